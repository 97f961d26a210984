"""What a git working directory costs a warm turn: Codex's own git commands, side by side.

In a git working directory Codex runs ``git`` in the background of every turn (``rev-parse HEAD``,
``remote -v``, ``config --get core.fsmonitor``, and ``status --porcelain``) to send the model
workspace metadata (the ``x-codex-turn-metadata`` header: remote URLs, the HEAD commit, whether there
are changes).  No Codex option turns it off, so a hand-written client pays it as much as claif_cod;
every other benchmark here runs in a plain directory, which has none of it.  Rows, interleaved in a
new random order every round:

``raw plain`` / ``raw git``              the floor (``RawAppServer``: an ephemeral thread driven
                                        directly) in a plain directory and in a git repository
``in-process plain`` / ``in-process git`` ``CodexClient(daemon="off")`` in each, the history re-sent

The repository holds ``--files`` committed files, one of them modified, and an ``origin`` remote (read
from its config: no network).  Afterwards a separate app-server in the repository, with
``GIT_TRACE``, counts the git commands of a few turns.  Nothing asserts on time; every reply is checked.
Run: ``python bench/git_workdir.py [--turns 40] [--files 200] [--codex PATH] [--one-ca]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import codex_cli_bin
from bench_common import (
    at_least_two,
    codex_version,
    median_interval,
    model_server_process,
    offline_workdir,
    one_ca_store,
    round_orders,
    run_header,
)
from floor_bench import Chat, turn
from raw_app_server import RawAppServer

from claif_cod import CodexClient

SIZE = 10
"""Messages of history each conversation starts with."""
COUNTED_TURNS = 5


def git_repository(path: Path, files: int) -> Path:
    """A repository of ``files`` committed files, one modified since, with an ``origin`` remote."""
    path.mkdir()
    for i in range(files):
        (path / f"module_{i}.py").write_text(f"VALUE = {i}\n" * 40)
    env = {
        **os.environ,
        **{
            f"GIT_{who}_{what}": value
            for who in ("AUTHOR", "COMMITTER")
            for what, value in (("NAME", "bench"), ("EMAIL", "bench@example.invalid"))
        },
    }
    for command in (
        ["init", "-q"],
        ["remote", "add", "origin", "https://example.invalid/project.git"],
        ["add", "."],
        ["commit", "-q", "-m", "files"],
    ):
        subprocess.run(["git", *command], cwd=path, env=env, check=True)
    (path / "module_0.py").write_text("VALUE = 'changed'\n")
    return path


def git_commands(codex: str, repo: Path, trace: Path) -> collections.Counter[str]:
    """The git commands Codex runs over :data:`COUNTED_TURNS` warm turns in ``repo``, by ``GIT_TRACE``."""
    raw = RawAppServer(codex, repo, {**os.environ, "GIT_TRACE": str(trace)})
    try:
        raw.start()
        chat = Chat("counted", SIZE, False)
        thread = raw.new_thread(seed=chat.seed())
        chat.answer(raw.turn(thread, chat.ask()).reply)  # warm-up, not counted
        trace.write_text("")
        for _ in range(COUNTED_TURNS):
            chat.answer(raw.turn(thread, chat.ask()).reply)
    finally:
        raw.close()
    marker = "trace: built-in: git "
    return collections.Counter(
        line.split(marker, 1)[1].strip() for line in trace.read_text().splitlines() if marker in line
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=40)
    parser.add_argument("--files", type=int, default=200, help="files in the repository (default 200)")
    parser.add_argument("--codex", default=None, help="Codex binary (default: the bundled one)")
    parser.add_argument("--one-ca", action="store_true", help="Codex trusts one certificate (as floor_bench.py's)")
    args = parser.parse_args()
    codex = args.codex or str(codex_cli_bin.bundled_codex_path())
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    with model_server_process() as (model_url, _), tempfile.TemporaryDirectory(prefix="claif-cod-git-") as scratch:
        root = Path(scratch)
        if args.one_ca:
            one_ca_store(root)
        plain = offline_workdir(root, model_url)
        repo = git_repository(root / "repo", args.files)
        env = {**os.environ}
        rows: dict[str, Callable[[], float]] = {}
        closers: list[Callable[[], None]] = []
        try:
            for label, workdir in (("plain", plain), ("git", repo)):
                raw = RawAppServer(codex, workdir, env)
                closers.append(raw.close)
                raw.start()
                raw_chat = Chat(f"raw {label}", SIZE, False)
                thread = raw.new_thread(seed=raw_chat.seed())
                client = CodexClient(working_dir=workdir, daemon="off", codex_path=codex)
                closers.append(client.close)
                our_chat = Chat(f"in-process {label}", SIZE, False)
                rows[f"raw {label}"] = _raw_turn(raw, thread, raw_chat)
                rows[f"in-process {label}"] = _client_turn(client, our_chat)
            samples: dict[str, list[float]] = {name: [] for name in rows}
            orders = round_orders(list(rows))
            for round_no in range(args.turns + 1):
                for name in next(orders):
                    took = rows[name]()
                    if round_no > 0:  # round 0 seeds every thread
                        samples[name].append(took)
        finally:
            for close in reversed(closers):
                close()
        counted = git_commands(codex, repo, root / "git-trace")
    print(f"Codex:   {codex_version(codex)}")
    print(
        run_header(
            load_start, f"{args.turns} timed turns per row, interleaved; total {time.perf_counter() - started:.0f} s"
        )
    )
    print(f"History: {SIZE} messages, growing by a turn a round; repository of {args.files} files, one modified\n")
    m = statistics.median
    print(f"{'row':<20}{'median ms':>12}")
    for name, values in samples.items():
        print(f"{name:<20}{m(values):>12.1f}")
    for who in ("raw", "in-process"):
        diffs = [g - p for g, p in zip(samples[f"{who} git"], samples[f"{who} plain"], strict=True)]
        low, high = median_interval(diffs)
        print(f"{who + ' git - plain, paired':<36}{m(diffs):+6.1f} ms  95% interval [{low:+.1f}, {high:+.1f}]")
    per_turn = sum(counted.values()) / COUNTED_TURNS
    print(f"\ngit commands Codex ran in {COUNTED_TURNS} warm turns in the repository ({per_turn:.1f} a turn):")
    for command, count in counted.most_common():
        print(f"  {count:3d}  git {command}")


def _raw_turn(raw: RawAppServer, thread: str, chat: Chat) -> Callable[[], float]:
    def run() -> float:
        result = raw.turn(thread, chat.ask())
        chat.answer(result.reply)
        return result.total_ms

    return run


def _client_turn(client: CodexClient, chat: Chat) -> Callable[[], float]:
    return lambda: turn(client, chat)


if __name__ == "__main__":
    main()
