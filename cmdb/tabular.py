"""Read a CMDB import file (CSV or XLSX) into numbered rows. Pure: bytes in, rows out.

Refused with a clear, located error (``ValidationFailed``): an empty file, an encoding
other than UTF-8 (with or without BOM) or Windows-1252, a wrong header, a formula in a
cell. The format itself is documented in docs/cmdb.md.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from config.errors import ValidationFailed

__all__ = ["COLUMNS", "Row", "TableFile", "read_table"]

# The columns of the format; any number of ``attr.<name>`` columns may follow.
COLUMNS = ("record", "key", "name", "tenant", "status", "relation", "target", "confidence")
REQUIRED = ("record", "key")
ATTR_PREFIX = "attr."
_ATTR_RE = re.compile(r"^attr\.[a-z_]{1,64}(\.[a-z_]{1,64})?$")
MAX_ROWS = 200_000
XLSX_MAGIC = b"PK\x03\x04"
# Bytes that Windows-1252 leaves undefined: a file containing them is in another encoding.
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
# A cell that a spreadsheet would evaluate: refused rather than imported as text.
_FORMULA_RE = re.compile(r"^(=|[+\-@].*[(!])")


@dataclass(frozen=True)
class Row:
    """One data row: its line number in the file and its non-empty cells by column name."""

    line: int
    cells: dict[str, Any]


@dataclass(frozen=True)
class TableFile:
    """The rows of a file, its column labels (for error locations) and what it was read as."""

    rows: list[Row]
    columns: dict[str, str]  # column name → location label ("3" or "C")
    encoding: str


def _fail(detail: str, where: str, message: str) -> ValidationFailed:
    return ValidationFailed(detail, errors={where: [message]})


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise _fail(
            "Unsupported encoding.",
            "file",
            "The file looks like UTF-16 or binary; save it as CSV UTF-8 (or Windows-1252).",
        )
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise _fail(
                "Unsupported encoding.", "file", f"Invalid UTF-8 after the BOM at byte {exc.start}."
            ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    bad = next((i for i, b in enumerate(data) if b in _CP1252_UNDEFINED), None)
    if bad is not None:
        raise _fail(
            "Unsupported encoding.",
            "file",
            f"The file is neither UTF-8 nor Windows-1252 (byte 0x{data[bad]:02x} at offset "
            f"{bad}); save it as CSV UTF-8.",
        )
    return data.decode("cp1252"), "cp1252"


def _check_header(names: list[str], labels: list[str]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    columns: dict[str, str] = {}
    for name, label in zip(names, labels, strict=True):
        where = f"line 1, column {label}"
        if not name:
            errors.setdefault(where, []).append("Empty column name.")
        elif name in columns:
            errors.setdefault(where, []).append(f"Column {name!r} appears twice.")
        elif name not in COLUMNS and not _ATTR_RE.match(name):
            errors.setdefault(where, []).append(
                f"Unknown column {name!r}; expected {', '.join(COLUMNS)} or attr.<name>."
            )
        else:
            columns[name] = label
    for required in REQUIRED:
        if required not in columns and not errors:
            errors.setdefault("line 1", []).append(f"Missing column {required!r}.")
    if errors:
        raise ValidationFailed("The header of the import file is wrong.", errors=errors)
    return columns


def _read_csv(data: bytes) -> TableFile:
    text, encoding = _decode(data)
    if not text.strip():
        raise _fail("The import file is empty.", "file", "The file is empty.")
    first = text.lstrip("\ufeff").splitlines()[0]
    delimiter = max((",", ";", "\t"), key=lambda d: (first.count(d), d == ","))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _fail("The import file is not valid CSV.", "line 1", str(exc)) from None
    names = [h.strip() for h in header]
    labels = [str(i) for i in range(1, len(names) + 1)]
    columns = _check_header(names, labels)
    rows: list[Row] = []
    errors: dict[str, list[str]] = {}
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(names):
                errors.setdefault(f"line {line}", []).append(
                    f"{len(values)} cells for {len(names)} columns."
                )
                continue
            cells: dict[str, Any] = {}
            for name, label, value in zip(names, labels, values, strict=False):
                value = value.strip()
                if not value:
                    continue
                if _FORMULA_RE.match(value):
                    errors.setdefault(f"line {line}, column {label} ({name})", []).append(
                        "A formula is not accepted; give the value."
                    )
                    continue
                cells[name] = value
            rows.append(Row(line, cells))
            if len(rows) > MAX_ROWS:
                raise _fail("The import file is too long.", "file", f"More than {MAX_ROWS} rows.")
    except csv.Error as exc:
        raise _fail(
            "The import file is not valid CSV.", f"line {reader.line_num}", str(exc)
        ) from None
    if errors:
        raise ValidationFailed(f"The import file has {len(errors)} error(s).", errors=errors)
    if not rows:
        raise _fail("The import file has no rows.", "file", "Only a header: nothing to import.")
    return TableFile(rows, columns, encoding)


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    return value


def _read_xlsx(data: bytes) -> TableFile:
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _fail(
            "The import file is not a readable XLSX workbook.", "file", str(exc)[:200]
        ) from None
    try:
        sheet = workbook.worksheets[0]
        rows_iter = sheet.iter_rows()
        header_cells = None
        for cells in rows_iter:
            if any(c.value not in (None, "") for c in cells):
                header_cells = cells
                break
        if header_cells is None:
            raise _fail("The import file is empty.", "file", "The first sheet is empty.")
        while header_cells and header_cells[-1].value in (None, ""):
            header_cells = header_cells[:-1]
        names = [str(c.value).strip() if c.value is not None else "" for c in header_cells]
        labels = [get_column_letter(i) for i in range(1, len(names) + 1)]
        columns = _check_header(names, labels)
        rows: list[Row] = []
        errors: dict[str, list[str]] = {}
        for cells in rows_iter:
            line = None
            values: dict[str, Any] = {}
            for index, cell in enumerate(cells):
                if cell.value is None or cell.value == "":
                    continue
                line = cell.row
                if index >= len(names):
                    errors.setdefault(f"line {cell.row}", []).append(
                        f"A value beyond the last column ({get_column_letter(index + 1)})."
                    )
                    continue
                where = f"line {cell.row}, column {labels[index]} ({names[index]})"
                if cell.data_type == "f" or (
                    isinstance(cell.value, str) and _FORMULA_RE.match(cell.value.strip())
                ):
                    errors.setdefault(where, []).append(
                        "A formula is not accepted; give the value."
                    )
                    continue
                value = _xlsx_value(cell.value)
                if value != "":
                    values[names[index]] = value
            if line is None:
                continue
            rows.append(Row(line, values))
            if len(rows) > MAX_ROWS:
                raise _fail("The import file is too long.", "file", f"More than {MAX_ROWS} rows.")
    finally:
        workbook.close()
    if errors:
        raise ValidationFailed(f"The import file has {len(errors)} error(s).", errors=errors)
    if not rows:
        raise _fail("The import file has no rows.", "file", "Only a header: nothing to import.")
    return TableFile(rows, columns, "xlsx")


def read_table(data: bytes, filename: str = "") -> TableFile:
    """Read an import file: XLSX when it is a zip (or named ``.xlsx``), CSV otherwise."""
    if not data or not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise _fail("The import file is empty.", "file", "The file is empty.")
    if data.startswith(XLSX_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data)
    return _read_csv(data)
