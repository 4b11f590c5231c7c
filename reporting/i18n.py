"""The locale of reports built outside a request (command line, scheduler, tests).

The app's locale selector reads the browser session, which only exists during a request;
elsewhere reports are French, the language of the syndicate's documents.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flask import has_request_context
from flask_babel import force_locale

__all__ = ["report_locale"]


@contextlib.contextmanager
def report_locale() -> Iterator[None]:
    if has_request_context():
        yield
        return
    with force_locale("fr"):
        yield
