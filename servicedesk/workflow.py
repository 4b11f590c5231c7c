"""The ticket workflow (API.md §5) as a pure transition table.

``new`` is where a ticket starts. ``closed`` and ``cancelled`` are final; ``solved`` may
be reopened (back to ``in_progress``). Moving to ``assigned`` needs an assignee and moving
to ``solved`` needs the solution text: both rules live here so that the API, the pages and
the connectors apply the same ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "FINAL",
    "OPEN",
    "TRANSITIONS",
    "Move",
    "TicketStatus",
    "check_move",
    "next_states",
]


class TicketStatus(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = TicketStatus

TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.PENDING, S.SOLVED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.PENDING, S.SOLVED, S.CANCELLED}),
    S.PENDING: frozenset({S.IN_PROGRESS, S.SOLVED, S.CANCELLED}),
    S.SOLVED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}

FINAL = frozenset({S.CLOSED, S.CANCELLED})
# Tickets still waiting for someone (the backlog): everything but solved and final.
OPEN = frozenset({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.PENDING})
# Statuses in which the ticket counts as taken into account (owned).
OWNED = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.PENDING, S.SOLVED, S.CLOSED})


def next_states(status: TicketStatus) -> list[TicketStatus]:
    """The moves allowed from ``status``, in a stable order."""
    return sorted(TRANSITIONS[status], key=list(TicketStatus).index)


@dataclass(frozen=True)
class Move:
    """What a transition changes besides the status (applied by the service)."""

    to: TicketStatus
    sets_owned: bool  # first time the ticket is taken into account
    sets_solved: bool
    sets_closed: bool
    clears_solved: bool  # a reopen
    starts_pending: bool
    ends_pending: bool


class MoveRefused(ValueError):
    """A move the workflow refuses. ``allowed`` lists the moves from the current status;
    ``field`` names the missing input when the move itself is allowed."""

    def __init__(self, message: str, *, allowed: list[TicketStatus], field: str | None = None):
        super().__init__(message)
        self.allowed = allowed
        self.field = field


def check_move(
    current: TicketStatus,
    to: TicketStatus,
    *,
    has_assignee: bool,
    has_solution: bool,
    was_owned: bool,
) -> Move:
    """Validate ``current → to`` and say what it implies; raises :class:`MoveRefused`."""
    allowed = next_states(current)
    if to not in TRANSITIONS[current]:
        raise MoveRefused(f"{current.value} → {to.value} is not allowed", allowed=allowed)
    if to is S.ASSIGNED and not has_assignee:
        raise MoveRefused("assigning needs an assignee", allowed=allowed, field="assignee")
    if to is S.SOLVED and not has_solution:
        raise MoveRefused(
            "solving needs the solution as a comment", allowed=allowed, field="comment"
        )
    return Move(
        to=to,
        sets_owned=to in OWNED and not was_owned,
        sets_solved=to is S.SOLVED,
        sets_closed=to is S.CLOSED,
        clears_solved=current is S.SOLVED and to is S.IN_PROGRESS,
        starts_pending=to is S.PENDING,
        ends_pending=current is S.PENDING,
    )
