"""``python -m claif_cod.testing``: run the offline model server until interrupted.

Prints ``export CODEX_HOME=...`` (a home aimed at the server) on stdout, so a shell can
``eval`` it or a test harness can read the first line; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import queue
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from claif_cod.testing.codex_home import write_codex_home
from claif_cod.testing.model_server import ModelServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claif_cod.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--codex-home", type=Path, help="write the CODEX_HOME here and keep it (default: a temp dir)")
    parser.add_argument("--model", default="o4-mini", help="the default model of the CODEX_HOME")
    args = parser.parse_args(argv)

    # A queue the handler puts into, not an Event it sets: Python runs the handler in this thread between
    # two bytecodes, also while Event.wait holds the Event's lock (as the wait begins), which set() takes
    # too: the server never stopped. SimpleQueue.put is reentrant, made for such callers.
    stop: queue.SimpleQueue[int] = queue.SimpleQueue()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: stop.put(signum))
    owned = args.codex_home is None
    home = Path(tempfile.mkdtemp(prefix="claif-test-home-")) if owned else args.codex_home
    try:
        with ModelServer(args.host, args.port) as server:
            write_codex_home(home, server.url, model=args.model)
            print(f"export CODEX_HOME={shlex.quote(str(home))}", flush=True)
            print(f"model server on {server.url}; Ctrl-C stops it", file=sys.stderr, flush=True)
            stop.get()
            print(f"served {len(server.requests)} requests", file=sys.stderr)
    finally:
        if owned:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
