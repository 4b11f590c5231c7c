"""Errors of the CMDB domain (rendered as problem+json by the kernel)."""

from __future__ import annotations

from config.errors import Conflict, NotFound, ValidationFailed

__all__ = ["CIKeyConflict", "RelationCycle", "UnknownCIs"]


class RelationCycle(ValidationFailed):
    """The relation would close a loop; ``cycle`` lists the keys around it."""

    slug = "relation-cycle"


class UnknownCIs(NotFound):
    """Keys or ids that name no CI the caller can see; ``unknown`` lists them."""

    slug = "unknown-cis"


class CIKeyConflict(Conflict):
    """A CI with this kind and code exists (never says whose it is, API.md §4)."""

    slug = "ci-key-conflict"
