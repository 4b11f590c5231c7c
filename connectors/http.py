"""One way to make HTTP sessions for every connector.

Every call has a timeout; idempotent calls (and any call answered 429, 502, 503 or 504) are
retried with exponential backoff; the User-Agent says who calls; secrets never reach a log
line, an exception message or a run's errors (:func:`mask`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

__all__ = [
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "Masker",
    "TimeoutSession",
    "make_session",
]

log = logging.getLogger("syndic.connectors.http")

USER_AGENT = "syndic-connectors/0.1 (+https://github.com/; service desk sync)"
DEFAULT_TIMEOUT = (5.0, 60.0)  # connect, read (seconds)
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class Masker:
    """Replaces known secret values (and anything after ``user_token``/``Session-Token``)
    by ``***`` in text meant for people."""

    _PATTERNS = re.compile(
        r"(?i)(user_token[ =:]+|app_token=|session_token=|app-token:\s*|session-token:\s*"
        r"|authorization:\s*\S+\s+)([^\s&\"',;]+)"
    )

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets = sorted([*self.secrets, secret], key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = str(text)
        for secret in self.secrets:
            out = out.replace(secret, "***")
        return self._PATTERNS.sub(lambda m: m.group(1) + "***", out)


class TimeoutSession(requests.Session):
    """A ``requests.Session`` that always sends a timeout (the caller's, or the default)."""

    def __init__(self, timeout: Any = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


def make_session(
    *,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    retries: int = 4,
    backoff: float = 0.5,
    backoff_max: float = 30.0,
    pool_size: int = 4,
    user_agent: str = USER_AGENT,
) -> TimeoutSession:
    """A session with timeouts, retries with backoff and our User-Agent.

    Retries: connection errors and read timeouts of idempotent methods (GET, HEAD, OPTIONS,
    PUT, DELETE), and any method answered 429/502/503/504 (those mean "not processed"),
    honouring ``Retry-After``. The final response is returned, not raised, so that the
    caller reads the source's error body.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        backoff_max=backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    # 429/502/503/504 mean the request was not processed: safe to repeat a POST too.
    retry_any_method_on_status = _StatusRetry.from_retry(retry)
    session = TimeoutSession(timeout)
    adapter = HTTPAdapter(
        max_retries=retry_any_method_on_status, pool_connections=pool_size, pool_maxsize=pool_size
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    session.headers["Accept"] = "application/json"
    return session


class _StatusRetry(Retry):
    """Retry on the listed statuses whatever the method; on errors only if idempotent."""

    @classmethod
    def from_retry(cls, retry: Retry) -> _StatusRetry:
        return cls(
            total=retry.total,
            connect=retry.connect,
            read=retry.read,
            status=retry.status,
            other=retry.other,
            backoff_factor=retry.backoff_factor,
            backoff_max=retry.backoff_max,
            status_forcelist=retry.status_forcelist,
            allowed_methods=retry.allowed_methods,
            respect_retry_after_header=retry.respect_retry_after_header,
            raise_on_status=retry.raise_on_status,
            raise_on_redirect=retry.raise_on_redirect,
        )

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if self.total is False:
            return False
        return bool(self.status_forcelist and status_code in self.status_forcelist)
