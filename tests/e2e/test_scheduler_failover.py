"""Two scheduler processes: only the lease holder runs jobs; the other takes over on a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TTL = 5

SCRIPT = """
import sys
from config.app import create_app
from config.jobs import build_scheduler, scheduled

@scheduled("interval", id="test.tick", seconds=1)
def tick():
    pass

app = create_app()
build_scheduler(app, holder=sys.argv[1]).start()
"""


def _runs(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT holder, status FROM job_runs WHERE job_id = 'test.tick' ORDER BY id")
        ).all()
    engine.dispose()
    return [(r[0], r[1]) for r in rows]


def test_only_one_scheduler_acts_and_the_other_takes_over(tmp_path):
    url = f"sqlite:///{tmp_path / 'sched.db'}"
    env = {
        **os.environ,
        "SYNDIC_DATABASE_URL": url,
        "SYNDIC_INSTANCE_PATH": str(tmp_path),
        "SYNDIC_LEASE_TTL_SECONDS": str(TTL),
        "SYNDIC_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "config.cli", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", SCRIPT, name],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("alpha", "beta")
    }
    try:
        deadline = time.monotonic() + 30  # a loaded machine starts processes slowly
        first = []
        while time.monotonic() < deadline:
            time.sleep(1)
            first = _runs(url)
            if len(first) >= 3:
                break
        holders = {h for h, _ in first}
        assert len(first) >= 3 and len(holders) == 1, first
        assert all(status == "succeeded" for _, status in first)
        active = holders.pop()
        standby = "beta" if active == "alpha" else "alpha"
        procs[active].send_signal(signal.SIGKILL)
        procs[active].wait(timeout=10)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 2 * TTL + 3:
            if any(h == standby for h, _ in _runs(url)):
                break
            time.sleep(0.5)
        taken_over_after = time.monotonic() - killed_at
        assert any(h == standby for h, _ in _runs(url)), "the standby never took over"
        assert taken_over_after <= 2 * TTL + 1
        time.sleep(2)
        after = [h for h, _ in _runs(url)[len(first) :]]
        assert after and set(after) <= {active, standby}
        # once the standby acts, the killed one never appears again
        assert active not in after[after.index(standby) :]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
