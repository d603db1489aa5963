"""The watched service of the example: a process that idles, and on SIGUSR1 burns CPU in several
threads (hashing large buffers, which releases Python's GIL, so the threads really run in parallel)
until SIGUSR2. Its command line carries a unique marker that the CloudWatch agent's `procstat`
pattern matches.

    python3 app.py --name opsloop-demo-app-1234 [--threads 8]
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import threading

BUF = b"x" * (1 << 20)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True, help="marker the procstat pattern matches")
    p.add_argument("--threads", type=int, default=8)
    args = p.parse_args()
    burning = threading.Event()
    stop = threading.Event()

    def burner() -> None:
        while not stop.is_set():
            if burning.wait(0.2):
                hashlib.sha256(BUF).digest()

    workers = [threading.Thread(target=burner, daemon=True) for _ in range(args.threads)]
    for w in workers:
        w.start()
    signal.signal(signal.SIGUSR1, lambda *_: burning.set())
    signal.signal(signal.SIGUSR2, lambda *_: burning.clear())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


if __name__ == "__main__":
    main()
