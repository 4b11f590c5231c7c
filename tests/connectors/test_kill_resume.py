"""Kill -9 a sync at several points (mid-page, between pages, during the deletion sweep),
resume it, and compare with the source: nothing lost, nothing duplicated, same minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.connectors.fake_glpi import APP_TOKEN, USER_TOKEN, FakeGlpiServer, small_instance

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
N_TICKETS = 1200
LEASE = 2


def _env(tmp_path: Path, url: str, glpi_url: str) -> dict[str, str]:
    config = tmp_path / "syndic.toml"
    config.write_text(
        f"[connectors]\npage_size = 100\nrun_lease_seconds = {LEASE}\nbackoff = 0.01\n"
        "read_timeout = 10.0\n"
    )
    return {
        **os.environ,
        "SYNDIC_DATABASE_URL": url,
        "SYNDIC_INSTANCE_PATH": str(tmp_path),
        "SYNDIC_CONFIG": str(config),
        "SYNDIC_GLPI_URL": glpi_url,
        "SYNDIC_GLPI_USER_TOKEN": USER_TOKEN,
        "SYNDIC_GLPI_APP_TOKEN": APP_TOKEN,
        "SYNDIC_LOG_LEVEL": "WARNING",
    }


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "config.cli", "sync", "glpi", "--full", "--quiet"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _run_to_end(env: dict[str, str]) -> str:
    """Run until a process gets the lease (the killed one's lease expires) and finishes."""
    deadline = time.monotonic() + 10 * LEASE + 20
    while True:
        proc = _start(env)
        out, err = proc.communicate(timeout=60)
        text = out.decode() + err.decode()
        if "already running" not in text:
            assert proc.returncode == 0, text
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.3)


def _kill_when(env: dict[str, str], trigger: threading.Event, delay: float = 0.0) -> None:
    """Start a sync; kill -9 it once ``trigger`` fires (plus ``delay``)."""
    deadline = time.monotonic() + 10 * LEASE + 20
    while True:
        proc = _start(env)
        while proc.poll() is None and not trigger.is_set():
            time.sleep(0.002)
        if trigger.is_set():
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            trigger.clear()
            return
        out, err = proc.communicate()
        text = (out + err).decode()
        assert "already running" in text, f"the run ended before the kill point: {text}"
        assert time.monotonic() < deadline
        time.sleep(0.3)


def _state(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        q = lambda sql: conn.execute(sa.text(sql)).all()  # noqa: E731
        state = {
            "tickets": q("SELECT external_id, deleted_at IS NULL FROM tickets WHERE source='glpi'"),
            "entries": q(
                "SELECT external_id, minutes, deleted_at IS NULL FROM time_entries"
                " WHERE source='glpi'"
            ),
            "runs": q("SELECT id, status, detail, resumed_from FROM sync_runs ORDER BY id"),
            "checkpoint": q("SELECT checkpoint FROM sync_sources"),
        }
    engine.dispose()
    return state


def _check(url: str, fake: Any) -> None:
    state = _state(url)
    tickets = [t[0] for t in state["tickets"]]
    assert len(tickets) == len(set(tickets)), "duplicated tickets"
    live = {t[0] for t in state["tickets"] if t[1]}
    assert live == {str(i) for i in fake.ticket_ids(False)}, "lost or extra tickets"
    entries = [e[0] for e in state["entries"]]
    assert len(entries) == len(set(entries)), "duplicated time entries"
    live_minutes = sum(e[1] for e in state["entries"] if e[2])
    assert live_minutes == fake.expected_minutes(), "minutes differ from GLPI"


def test_kill_nine_at_any_point_then_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    fake = small_instance()
    fake.generate(N_TICKETS, tasks_per_ticket=3)
    mid_page = threading.Event()
    between_pages = threading.Event()

    def hook(path: str, args: dict[str, str]) -> None:
        start = int(args.get("range", "0-0").split("-")[0])
        if path == "Ticket" and start >= 600 and args.get("is_deleted") == "false":
            mid_page.set()  # the page is answered; the kill lands while it is applied
        if path == "TicketTask" and start >= 1500 and not between_pages.is_set():
            between_pages.set()
            time.sleep(0.5)  # the killer acts before this page is answered

    fake.hooks.append(hook)
    with FakeGlpiServer(fake) as server:
        env = _env(tmp_path, url, server.url)
        subprocess.run(
            [sys.executable, "-m", "config.cli", "db", "upgrade"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        started = time.monotonic()
        _kill_when(env, mid_page, delay=0.05)
        first = _state(url)
        checkpoint = first["checkpoint"][0][0]
        assert checkpoint is not None  # stopped with work to resume
        import json

        checkpoint = json.loads(checkpoint) if isinstance(checkpoint, str) else checkpoint
        applied = [int(t[0]) for t in first["tickets"]]
        # The checkpoint and the data it describes were committed together.
        assert checkpoint["phase"] == "tickets" and checkpoint["after"] == max(applied)
        assert sorted(applied) == list(range(1, max(applied) + 1))
        _kill_when(env, between_pages)
        fake.hooks.clear()
        _run_to_end(env)
        _check(url, fake)
        runs = _state(url)["runs"]
        assert [r[1] for r in runs] == ["failed", "failed", "succeeded"]
        assert runs[0][2].startswith("interrupted; resumed by run")
        assert runs[2][3] == runs[1][0]

        # Now some tickets are purged in GLPI (10 %): kill during the deletion sweep.
        for i in range(1, N_TICKETS + 1, 10):
            fake.purged.add(i)
        in_sweep = threading.Event()

        def watch_sweep() -> None:
            engine = sa.create_engine(url)
            while not in_sweep.is_set() and time.monotonic() - started < 50:
                with engine.connect() as conn:
                    row = conn.execute(sa.text("SELECT checkpoint FROM sync_sources")).first()
                if row and row[0] and '"sweep"' in str(row[0]):
                    in_sweep.set()
                time.sleep(0.002)
            engine.dispose()

        watcher = threading.Thread(target=watch_sweep, daemon=True)
        watcher.start()
        _kill_when(env, in_sweep)
        watcher.join(5)
        partial = _state(url)
        deleted_now = sum(1 for t in partial["tickets"] if not t[1])
        assert 0 < deleted_now <= N_TICKETS // 10
        _run_to_end(env)
        _check(url, fake)
        assert time.monotonic() - started < 60
