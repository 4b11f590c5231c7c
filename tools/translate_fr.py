"""Fill the French catalog from tools/fr.json (msgid → French); lists what is missing.

Usage: python tools/translate_fr.py   (then `make translations` compiles it)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "config/translations/fr/LC_MESSAGES/messages.po"
TABLE = ROOT / "tools/fr.json"


def main() -> int:
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    missing = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if key in table:
            message.string = table[key]
        elif not message.string:
            missing.append(key)
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=100)
    for key in missing:
        print(f"missing: {key!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
