"""The service desk's errors (rendered as problem+json by the kernel)."""

from __future__ import annotations

from config.errors import Conflict, ValidationFailed

__all__ = ["InvalidTimeEntry", "ProjectInUse", "TransitionNotAllowed", "TransitionNeedsInput"]


class TransitionNotAllowed(Conflict):
    """409: the workflow does not allow this move; ``allowed`` lists the moves that are."""

    slug = "transition-not-allowed"


class TransitionNeedsInput(ValidationFailed):
    """422: the move is allowed but needs an input (the assignee, the solution)."""

    slug = "transition-needs-input"


class InvalidTimeEntry(ValidationFailed):
    """422: a time entry breaks a rule (24 h a day, future date, tenants that differ...)."""

    slug = "invalid-time-entry"


class ProjectInUse(Conflict):
    """409: the project has time entries; set its status instead of deleting it."""

    slug = "project-in-use"
