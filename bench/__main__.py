"""``python -m bench [name ...]``: run benchmark modules and print one table."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench
from bench.harness import Harness

NOT_BENCHES = {"harness", "probes", "loadgen", "__main__"}


def main(argv: list[str]) -> int:
    names = argv or sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name not in NOT_BENCHES
    )
    h = Harness()
    print(f"work dir: {h.workdir}")
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        h.current = name
        print(f"\n== {name}", flush=True)
        module.run(h)
    return h.report()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
