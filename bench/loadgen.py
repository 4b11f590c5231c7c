"""Fallback load generator (when wrk is not installed): threads with one connection each."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    cfg = json.loads(sys.argv[1])
    parts = urlsplit(cfg["url"])
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    stop = time.monotonic() + cfg["seconds"]
    counts = [0] * cfg["connections"]

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            try:
                conn.request(cfg["method"], target, body=cfg["body"], headers=cfg["headers"])
                resp = conn.getresponse()
                resp.read()
                if 200 <= resp.status < 300:
                    counts[i] += 1
            finally:
                conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(cfg["connections"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"rate": sum(counts) / (time.monotonic() - t0)}))


if __name__ == "__main__":
    main()
