"""The benchmark harness: servers under gunicorn, load from a second process, ratios.

A benchmark module defines ``run(h: Harness) -> None`` and records results with
``h.ratio(...)`` or, for a request rate against a ceiling probe, ``h.versus(...)``. The
probes (a bare Flask hello endpoint, a bare one-row and a bare 50-row SQLAlchemy +
marshmallow endpoint) run under the same gunicorn settings (2 sync workers) and the same
load generator as syndic itself, so every ratio compares like with like on this machine, now.

A machine shared with others changes speed by ±15 % from one few-second load to the next
(seen here: the one-row probe at 814, 1194 and 1031 req/s in three loads a few seconds apart).
A target compared with a probe measured minutes earlier, once each, then passes or fails by
chance. :meth:`Harness.versus` measures the probe and the target one after the other,
``BENCH_ROUNDS`` times, and keeps the median of the paired ratios: both sides of a pair see
the same machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PAIR_SECONDS = float(os.environ.get("BENCH_PAIR_SECONDS", str(SECONDS)))
PROBE_PATHS = {"hello": "/hello", "onerow": "/row/7", "list50": "/rows?limit=50"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    bench: str
    target: str
    measured: float
    baseline: float
    unit: str
    goal: float
    higher_is_better: bool = True
    note: str = ""
    paired: float | None = None  # the median of paired ratios (Harness.versus)

    @property
    def ratio(self) -> float:
        if self.paired is not None:
            return self.paired
        return self.measured / self.baseline if self.baseline else float("nan")

    @property
    def passed(self) -> bool:
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]


@contextmanager
def gunicorn(
    app_spec: str,
    env: dict[str, str] | None = None,
    workers: int = WORKERS,
    ready_path: str = "/healthz",
) -> Iterator[Server]:
    """Serve ``module:factory()`` with gunicorn (sync workers) on a free loopback port."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--backlog",
        "2048",
        app_spec,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(url + ready_path, timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                    raise RuntimeError(f"{app_spec} did not start: {err}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield Server(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def load(
    url: str,
    *,
    seconds: float = SECONDS,
    connections: int = CONNECTIONS,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
    lua: str | None = None,
) -> float:
    """Successful requests per second against ``url``, from a second process (wrk if installed).

    ``lua`` adds wrk Lua code (a ``request`` function) for requests that must differ.
    """
    headers = headers or {}
    if shutil.which("wrk"):
        return _wrk(url, seconds, connections, headers, method, body, lua)
    if lua:
        raise RuntimeError("this benchmark needs wrk (apt-get install wrk)")
    return _pyload(url, seconds, connections, headers, method, body)


def _wrk(
    url: str,
    seconds: float,
    connections: int,
    headers: dict[str, str],
    method: str,
    body: str | None,
    lua: str | None = None,
) -> float:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    script.write(
        f'wrk.method = "{method}"\n'
        + (f"wrk.body = {json.dumps(body)}\n" if body is not None else "")
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        + (lua or "")
        + "done = function(summary, latency, requests)\n"
        + '  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.duration,'
        + " summary.errors.status + summary.errors.connect + summary.errors.read"
        + " + summary.errors.write + summary.errors.timeout, 0))\nend\n"
    )
    script.close()
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    m = re.search(r"RESULT (\d+) (\d+) (\d+)", out)
    if not m:
        raise RuntimeError(f"wrk output not understood: {out}")
    requests, duration_us, errors = (int(x) for x in m.groups())
    if errors > requests * 0.01:
        raise RuntimeError(f"{errors} errors out of {requests} requests on {url}")
    return (requests - errors) / (duration_us / 1e6)


def _pyload(
    url: str,
    seconds: float,
    connections: int,
    headers: dict[str, str],
    method: str,
    body: str | None,
) -> float:
    payload = json.dumps(
        {
            "url": url,
            "seconds": seconds,
            "connections": connections,
            "headers": headers,
            "method": method,
            "body": body,
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", payload],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out)["rate"])


def timed(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time of ``fn`` in seconds over ``repeat`` runs (after ``warmup`` runs)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@dataclass
class Harness:
    """Collects results across benchmark modules; keeps the ceiling probes' servers of a run."""

    results: list[Result] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="syndic-bench-")))
    _probes: Server | None = None
    _stack: ExitStack = field(default_factory=ExitStack)
    current: str = ""

    def ratio(
        self,
        target: str,
        measured: float,
        baseline: float,
        *,
        goal: float,
        unit: str = "req/s",
        higher_is_better: bool = True,
        note: str = "",
    ) -> Result:
        r = Result(self.current, target, measured, baseline, unit, goal, higher_is_better, note)
        self.results.append(r)
        sign = ">=" if higher_is_better else "<="
        print(
            f"  {target}: {measured:.4g} vs {baseline:.4g} {unit} -> {r.ratio:.2f} "
            f"(goal {sign} {goal}) {'PASS' if r.passed else 'FAIL'}",
            flush=True,
        )
        return r

    def versus(
        self,
        target: str,
        url: str,
        probe: str,
        *,
        goal: float,
        note: str = "",
        **load_args: Any,
    ) -> Result:
        """Requests/s of ``url`` (``load_args`` as :func:`load` takes them) against the
        ``probe`` measured just before it, ``ROUNDS`` times (loads of ``PAIR_SECONDS``): the
        ratio is the median of the paired ratios, the rates the medians of each side."""
        probe_url = self._probe_server().url + PROBE_PATHS[probe]
        load(url, seconds=1, **load_args)  # warm-up
        pairs = []
        for _ in range(ROUNDS):
            base = load(probe_url, seconds=PAIR_SECONDS)
            pairs.append((load(url, seconds=PAIR_SECONDS, **load_args), base))
        ratios = sorted(got / base for got, base in pairs)
        r = Result(
            self.current,
            target,
            statistics.median(got for got, _ in pairs),
            statistics.median(base for _, base in pairs),
            "req/s",
            goal,
            note=note,
            paired=statistics.median(ratios),
        )
        self.results.append(r)
        spread = " ".join(f"{x:.2f}" for x in ratios)
        print(
            f"  {target}: {r.measured:.4g} vs {r.baseline:.4g} req/s (median of {ROUNDS} pairs) "
            f"-> {r.ratio:.2f} [{spread}] (goal >= {goal}) {'PASS' if r.passed else 'FAIL'}",
            flush=True,
        )
        return r

    def _probe_server(self) -> Server:
        """The probes' app under gunicorn, started once and kept until :meth:`report`."""
        if self._probes is None:
            env = {"BENCH_PROBE_DB": self.probe_db()}
            self._probes = self._stack.enter_context(
                gunicorn("bench.probes:create_app()", env=env, ready_path="/hello")
            )
            for path in PROBE_PATHS.values():
                load(self._probes.url + path, seconds=1)  # warm-up
        return self._probes

    def info(self, target: str, value: float, unit: str) -> None:
        print(f"  {target}: {value:.4g} {unit}", flush=True)

    # -- ceiling probes ---------------------------------------------------------------

    def probe_db(self) -> str:
        path = self.workdir / "probe.db"
        if not path.exists():
            from bench.probes import build_probe_db

            build_probe_db(str(path), rows=1000)
        return str(path)

    # -- a syndic instance ------------------------------------------------------------

    def syndic_env(self, name: str) -> dict[str, str]:
        """Environment of a syndic instance on its own SQLite file in the work dir."""
        inst = self.workdir / name
        inst.mkdir(exist_ok=True)
        return {
            "SYNDIC_DATABASE_URL": f"sqlite:///{inst / 'syndic.db'}",
            "SYNDIC_INSTANCE_PATH": str(inst),
            "SYNDIC_SECRET_KEY": "bench",
            "SYNDIC_LOG_LEVEL": "WARNING",
        }

    def report(self) -> int:
        self._stack.close()
        if not self.results:
            print("no results")
            return 1
        cols = ["bench", "target", "ratio", "goal", "result", "measured", "baseline"]
        rows = []
        for r in self.results:
            sign = ">=" if r.higher_is_better else "<="
            rows.append(
                [
                    r.bench,
                    r.target,
                    f"{r.ratio:.2f}",
                    f"{sign} {r.goal}",
                    "PASS" if r.passed else "FAIL",
                    f"{r.measured:.4g} {r.unit}",
                    f"{r.baseline:.4g} {r.unit}",
                ]
            )
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
        print()
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        failed = sum(not r.passed for r in self.results)
        print(
            f"\n{len(self.results) - failed} passed, {failed} failed "
            f"(load: {'wrk' if shutil.which('wrk') else 'python loadgen'}, "
            f"{SECONDS:g}s x {CONNECTIONS} connections, {WORKERS} sync workers; against a probe: "
            f"median of {ROUNDS} pairs of {PAIR_SECONDS:g}s loads)"
        )
        return 1 if failed else 0
