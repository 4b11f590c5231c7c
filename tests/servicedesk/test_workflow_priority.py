"""The ticket workflow table and the priority matrix (pure)."""

from __future__ import annotations

import itertools

import pytest

from servicedesk.priority import DEFAULT_MATRIX, check_matrix, priority
from servicedesk.workflow import MoveRefused, TicketStatus, check_move, next_states

S = TicketStatus
ALLOWED = {
    (S.NEW, S.ASSIGNED),
    (S.NEW, S.IN_PROGRESS),
    (S.NEW, S.CANCELLED),
    (S.ASSIGNED, S.IN_PROGRESS),
    (S.ASSIGNED, S.PENDING),
    (S.ASSIGNED, S.SOLVED),
    (S.ASSIGNED, S.CANCELLED),
    (S.IN_PROGRESS, S.PENDING),
    (S.IN_PROGRESS, S.SOLVED),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.PENDING, S.IN_PROGRESS),
    (S.PENDING, S.SOLVED),
    (S.PENDING, S.CANCELLED),
    (S.SOLVED, S.CLOSED),
    (S.SOLVED, S.IN_PROGRESS),
}


@pytest.mark.parametrize(("current", "to"), list(itertools.product(S, S)))
def test_every_pair_follows_the_table_of_api_md(current, to):
    move = lambda: check_move(current, to, has_assignee=True, has_solution=True, was_owned=False)  # noqa: E731
    if (current, to) in ALLOWED:
        assert move().to is to
    else:
        with pytest.raises(MoveRefused) as exc:
            move()
        assert exc.value.allowed == next_states(current)


def test_closed_and_cancelled_are_final():
    assert next_states(S.CLOSED) == [] and next_states(S.CANCELLED) == []


def test_assigning_needs_an_assignee():
    with pytest.raises(MoveRefused) as exc:
        check_move(S.NEW, S.ASSIGNED, has_assignee=False, has_solution=False, was_owned=False)
    assert exc.value.field == "assignee"


def test_solving_needs_the_solution():
    with pytest.raises(MoveRefused) as exc:
        check_move(S.IN_PROGRESS, S.SOLVED, has_assignee=True, has_solution=False, was_owned=True)
    assert exc.value.field == "comment"


def test_owned_is_set_once_and_reopen_clears_solved():
    first = check_move(
        S.NEW, S.IN_PROGRESS, has_assignee=False, has_solution=False, was_owned=False
    )
    assert first.sets_owned
    again = check_move(
        S.PENDING, S.IN_PROGRESS, has_assignee=False, has_solution=False, was_owned=True
    )
    assert not again.sets_owned and again.ends_pending
    reopen = check_move(
        S.SOLVED, S.IN_PROGRESS, has_assignee=True, has_solution=False, was_owned=True
    )
    assert reopen.clears_solved and not reopen.sets_solved
    assert check_move(
        S.ASSIGNED, S.PENDING, has_assignee=True, has_solution=False, was_owned=True
    ).starts_pending


@pytest.mark.parametrize(
    ("urgency", "impact", "expected"),
    [(1, 1, 1), (1, 5, 4), (3, 3, 3), (5, 5, 5), (2, 4, 3), (4, 1, 3), (5, 1, 4)],
)
def test_default_matrix(urgency, impact, expected):
    assert priority(urgency, impact) == expected


def test_a_configured_matrix_is_used():
    flat = [[3] * 5 for _ in range(5)]
    assert priority(1, 1, check_matrix(flat)) == 3


@pytest.mark.parametrize("matrix", [[[1] * 5] * 4, [[1] * 4] * 5, [[0] * 5] * 5, [[6] * 5] * 5])
def test_bad_matrices_are_refused(matrix):
    with pytest.raises(ValueError):
        check_matrix(matrix)


def test_out_of_range_inputs_are_refused():
    with pytest.raises(ValueError):
        priority(0, 3)
    assert DEFAULT_MATRIX[0][0] == 1
