"""Priority from urgency × impact (1 = highest … 5) through a configurable matrix.

The default is GLPI's default matrix translated to syndic's scale (API.md §5): GLPI counts
5 = very high and adds 6 = major; syndic counts 1 = highest, and GLPI's "major" maps to 1.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DEFAULT_MATRIX", "check_matrix", "priority"]

# Rows: urgency 1..5; columns: impact 1..5 (API.md §5).
DEFAULT_MATRIX: tuple[tuple[int, ...], ...] = (
    (1, 1, 2, 3, 4),
    (1, 2, 2, 3, 4),
    (2, 2, 3, 4, 4),
    (3, 3, 4, 4, 5),
    (4, 4, 4, 5, 5),
)


def check_matrix(matrix: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """A 5×5 matrix of priorities 1..5, or ValueError saying what is wrong."""
    rows = tuple(tuple(int(v) for v in row) for row in matrix)
    if len(rows) != 5 or any(len(r) != 5 for r in rows):
        raise ValueError("the priority matrix must have 5 rows of 5 values")
    if any(not 1 <= v <= 5 for r in rows for v in r):
        raise ValueError("priorities in the matrix must be between 1 and 5")
    return rows


def priority(urgency: int, impact: int, matrix: Sequence[Sequence[int]] = DEFAULT_MATRIX) -> int:
    """The priority of a ticket (1 = highest)."""
    if not (1 <= urgency <= 5 and 1 <= impact <= 5):
        raise ValueError("urgency and impact go from 1 (highest) to 5")
    return int(matrix[urgency - 1][impact - 1])
