"""A client of GLPI's REST API v1 (``apirest.php``), GLPI 10.0 and 11.0.

As GLPI's code behaves (shared/glpi/README.md): ``initSession`` with the ``App-Token`` and
``Authorization: user_token …``; a session that PHP garbage-collected answers 401
``ERROR_SESSION_TOKEN_INVALID`` and is re-opened once; ``changeActiveEntities`` to the root,
recursively; every listing sends an explicit ``range`` (the default is 15 rows), reads 200/206
and ``Content-Range``, treats ``ERROR_RANGE_EXCEED_TOTAL`` and an empty page as the end, and
never trusts the total alone; errors are ``["CODE", "message"]`` arrays; PHP notices may come
as HTML before the JSON; ``killSession`` at the end.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from connectors.http import Masker, make_session

__all__ = ["GlpiClient", "GlpiError", "Page", "keyed_pages"]

log = logging.getLogger("syndic.connectors.glpi")

_CONTENT_RANGE = re.compile(r"^\s*(\d+)-(-?\d+)/(\d+)\s*$")


class GlpiError(RuntimeError):
    """GLPI answered an error (or something that is not its API). The message is masked."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Page:
    """One page of a listing: its rows, the range asked, the total GLPI announced."""

    start: int
    rows: list[dict[str, Any]]
    total: int | None
    status: int
    notices: list[str] = field(default_factory=list)


def parse_json_body(text: str) -> tuple[Any, str | None]:
    """The JSON of a GLPI answer, and the HTML/text notice PHP printed before it (if any).

    Raises ``ValueError`` when no JSON document ends the body.
    """
    stripped = text.strip()
    try:
        return json.loads(stripped), None
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", stripped):
        try:
            value, end = decoder.raw_decode(stripped, match.start())
        except ValueError:
            continue
        if stripped[end:].strip() == "":
            notice = re.sub(r"<[^>]+>", "", stripped[: match.start()]).strip()
            return value, notice[:300] or None
    raise ValueError(f"not JSON: {stripped[:80]!r}")


class GlpiClient:
    """One GLPI API session. Use as a context manager (``killSession`` on exit)."""

    def __init__(
        self,
        url: str,
        *,
        user_token: str,
        app_token: str | None = None,
        page_size: int = 500,
        timeout: float | tuple[float, float] = (5.0, 60.0),
        retries: int = 4,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self._user_token = user_token
        self._app_token = app_token
        self.page_size = page_size
        self.masker = Masker([user_token, app_token])
        self.http = session or make_session(timeout=timeout, retries=retries, backoff=backoff)
        self.session_token: str | None = None
        self.reinits = 0
        self.calls = 0
        self.on_notice = on_notice
        self.major_version: int | None = None

    # -- session ------------------------------------------------------------------------

    def __enter__(self) -> GlpiClient:
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._app_token:
            headers["App-Token"] = self._app_token
        if self.session_token:
            headers["Session-Token"] = self.session_token
        return headers

    def open(self) -> None:
        """``initSession``, then the whole entity tree as active entities."""
        headers = {"Content-Type": "application/json"}
        if self._app_token:
            headers["App-Token"] = self._app_token
        headers["Authorization"] = f"user_token {self._user_token}"
        resp = self._send("GET", "initSession", headers=headers)
        body = self._body(resp, "initSession")
        if resp.status_code != 200 or not isinstance(body, dict) or "session_token" not in body:
            raise self._error(resp, body, "initSession")
        self.session_token = str(body["session_token"])
        self.masker.add(self.session_token)
        resp = self._send(
            "POST",
            "changeActiveEntities",
            headers=self._headers(),
            data=json.dumps({"entities_id": 0, "is_recursive": True}),
        )
        body = self._body(resp, "changeActiveEntities")
        if resp.status_code != 200 or body is not True:
            raise self._error(resp, body, "changeActiveEntities")

    def close(self) -> None:
        """``killSession`` (best effort: a dead session is already gone)."""
        if self.session_token is None:
            return
        try:
            self._send("GET", "killSession", headers=self._headers())
        except (requests.RequestException, GlpiError) as exc:
            log.info("killSession failed: %s", self.masker(exc))
        finally:
            self.session_token = None

    # -- transport ----------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self.calls += 1
        try:
            return self.http.request(method, f"{self.base}/{path}", **kwargs)
        except requests.RequestException as exc:
            raise GlpiError(f"{method} {path}: {self.masker(exc)}") from None

    def _body(self, resp: requests.Response, what: str) -> Any:
        try:
            body, notice = parse_json_body(resp.text)
        except ValueError:
            if resp.status_code >= 400:
                raise GlpiError(
                    f"{what}: HTTP {resp.status_code} {self.masker(resp.text[:120])!r}",
                    status=resp.status_code,
                ) from None
            raise GlpiError(
                f"{what}: malformed JSON (HTTP {resp.status_code})", status=resp.status_code
            ) from None
        if notice and self.on_notice:
            self.on_notice(f"{what}: {self.masker(notice)}")
        return body

    def _error(self, resp: requests.Response, body: Any, what: str) -> GlpiError:
        code = None
        message = ""
        if isinstance(body, list) and body and isinstance(body[0], str):
            code = body[0]
            message = str(body[1]) if len(body) > 1 else ""
        elif isinstance(body, dict):
            message = str(body)[:200]
        return GlpiError(
            self.masker(f"{what}: HTTP {resp.status_code} {code or ''} {message}".strip()),
            status=resp.status_code,
            code=code,
        )

    def get(
        self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None
    ) -> tuple[requests.Response, Any]:
        """GET with the session; re-open the session once on 401 ERROR_SESSION_TOKEN_INVALID."""
        if self.session_token is None:
            self.open()
        for attempt in (1, 2):
            resp = self._send("GET", path, headers=self._headers(), params=params)
            body = self._body(resp, path)
            if (
                resp.status_code == 401
                and isinstance(body, list)
                and body[:1] == ["ERROR_SESSION_TOKEN_INVALID"]
                and attempt == 1
            ):
                self.reinits += 1
                self.session_token = None
                self.open()
                continue
            return resp, body
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ---------------------------------------------------------------------------

    def version(self) -> int:
        """GLPI's major version (10, 11 ...), from ``getGlpiConfig``; 10 if unknown."""
        if self.major_version is None:
            resp, body = self.get("getGlpiConfig")
            version = ""
            if resp.status_code == 200 and isinstance(body, dict):
                version = str((body.get("cfg_glpi") or {}).get("version") or "")
            m = re.match(r"(\d+)", version)
            self.major_version = int(m.group(1)) if m else 10
        return self.major_version

    def active_profile(self) -> dict[str, Any]:
        resp, body = self.get("getActiveProfile")
        if resp.status_code != 200 or not isinstance(body, dict):
            raise self._error(resp, body, "getActiveProfile")
        return dict(body.get("active_profile") or {})

    def page(
        self, path: str, start: int, size: int, params: Mapping[str, Any] | None = None
    ) -> Page:
        """``GET path?range=start-end``. An empty page (or ``ERROR_RANGE_EXCEED_TOTAL``,
        start beyond the total) is the end of the listing."""
        query: dict[str, Any] = {"range": f"{start}-{start + size - 1}"}
        query.update(params or {})
        resp, body = self.get(path, query)
        if (
            resp.status_code == 400
            and isinstance(body, list)
            and body[:1] == ["ERROR_RANGE_EXCEED_TOTAL"]
        ):
            return Page(start, [], None, resp.status_code)
        if resp.status_code not in (200, 206):
            raise self._error(resp, body, f"{path} range {query['range']}")
        total = None
        header = resp.headers.get("Content-Range")
        if header:
            m = _CONTENT_RANGE.match(header)
            if not m:
                raise GlpiError(f"{path}: unreadable Content-Range {header!r}")
            total = int(m.group(3))
        if isinstance(body, dict) and "totalcount" in body:  # search/… answers
            rows = body.get("data") or []
            total = int(body.get("totalcount") or 0)
        else:
            rows = body
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise GlpiError(f"{path} range {query['range']}: rows are not a list of objects")
        if resp.status_code == 200 and total is not None and len(rows) < total and start == 0:
            # 200 says one page holds everything; a short page with 200 is a lie to report.
            raise GlpiError(f"{path}: HTTP 200 with {len(rows)} of {total} rows")
        return Page(start, rows, total, resp.status_code)

    def item(
        self, itemtype: str, item_id: int, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """One item, or None if GLPI says it does not exist (404)."""
        resp, body = self.get(f"{itemtype}/{item_id}", dict(params or {}))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200 or not isinstance(body, dict):
            raise self._error(resp, body, f"{itemtype}/{item_id}")
        return body

    def items(self, itemtype: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        """Full rows of several items (``getMultipleItems``); items that vanished meanwhile
        are left out (GLPI fails the whole call for one missing item: fetched one by one)."""
        if not ids:
            return []
        params: list[tuple[str, Any]] = [("get_hateoas", "false")]
        for i, item_id in enumerate(ids):
            params.append((f"items[{i}][itemtype]", itemtype))
            params.append((f"items[{i}][items_id]", item_id))
        resp, body = self.get("getMultipleItems", params)
        if resp.status_code == 200 and isinstance(body, list):
            return [r for r in body if isinstance(r, dict)]
        if resp.status_code in (403, 404):
            rows = []
            for item_id in ids:
                row = self.item(itemtype, item_id, {"get_hateoas": "false"})
                if row is not None:
                    rows.append(row)
            return rows
        raise self._error(resp, body, "getMultipleItems")


def keyed_pages(
    fetch: Callable[[int, int], Page],
    key: Callable[[dict[str, Any]], Any],
    *,
    size: int,
    start: int = 0,
    after: Any = None,
    overlap: int = 5,
) -> Iterator[tuple[Page, list[dict[str, Any]], int]]:
    """Walk an offset-paged listing sorted by ``key`` without skipping rows.

    Offsets shift when rows vanish (or move) while we read. Each request overlaps the
    previous page by ``overlap`` rows; rows with a key not after the last one seen are
    dropped; if the first row returned is already beyond the last key seen, rows may have
    shifted before the window, so we step back a page and read again. Yields the page,
    its new rows (key order) and the offset to resume from.
    """
    position = start
    last = after
    overlap = max(0, min(overlap, size // 2))
    while True:
        ask = max(0, position - (overlap if last is not None else 0))
        page = fetch(ask, size)
        if not page.rows:
            return
        keys = [key(r) for r in page.rows]
        if any(b <= a for a, b in zip(keys, keys[1:], strict=False)):
            raise GlpiError(f"listing not in key order at offset {ask}")
        if last is not None and ask > 0 and keys[0] > last:
            # Rows vanished before the window: step back a page until it holds the last
            # key seen (or we are at the start).
            position = max(0, ask - size) + overlap
            continue
        new = [r for r, k in zip(page.rows, keys, strict=True) if last is None or k > last]
        if not new:
            if len(page.rows) < size:
                return  # a short window of rows already seen: the end of the listing
            position = ask + len(page.rows)  # a window stepped back into: read on
            continue
        last = keys[-1]
        position = ask + len(page.rows)
        yield page, new, position
