"""Chaos: kill -9 the daemon at random moments under session traffic; no acknowledged session is lost.

Several raw-protocol clients keep ``session.send`` going on a handful of named sessions while the
daemon is SIGKILLed and restarted, 50 times. A turn is *acknowledged* once its ``SessionTurnResult``
has reached the client. Requests in flight at a kill may die with the connection (counted); none may
get any other failure. Afterwards the registry file must be intact, ``sessions.list`` must list every
session with an acknowledged turn bound to the thread the client last saw (a session's thread never
changes once acknowledged), and one more turn on each must continue that same Codex thread with all
of the session's acknowledged messages in the model's input. The Codex children of the killed
daemons exit on stdin EOF: none may be left over beyond the final daemon's own.

The registry-level kill -9 loop (no daemon, no Codex) is in ``test_registry.py``.

``CHAOS_SEED=<n>`` replays a run's kill schedule and session choices (the interleaving of the
concurrent turns is up to the scheduler). The seed is printed, so a failure report shows it.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import pytest
from chaos_traffic import Attempt, TrafficLog, TrafficWorker, connect, list_sessions, send_turn
from codex_processes import codex_processes
from daemon_process import DaemonProcess

from claif_cod.testing import ModelServer

# ~70-80 s on 2 cores: each of the 50 rounds restarts the daemon (~0.5 s) and, unless it is killed
# first, a Codex app-server (probe + spawn, ~0.7 s). Several times that on a heavily loaded machine.
pytestmark = [pytest.mark.codex, pytest.mark.slow, pytest.mark.timeout(300)]

ROUNDS = 50
WORKERS = 5
SESSIONS = [f"chaos-{i}" for i in range(8)]
ROUND_ACK_TARGETS = (0, 1, 1, 2, 2, 3)
"""Turns acknowledged after a restart before the kill's random delay starts (0: kill during start-up)."""
MAX_KILL_DELAY_S = 0.25
ROUND_TIMEOUT_S = 30.0
ORPHAN_EXIT_TIMEOUT_S = 15.0


def orphans(codex_home: Path, daemon: DaemonProcess) -> dict[int, tuple[int, str]]:
    """Our Codex processes that are not children of the running daemon (children of killed ones)."""
    current = daemon.proc.pid if daemon.proc is not None and daemon.proc.poll() is None else None
    return {pid: info for pid, info in codex_processes(codex_home).items() if info[0] != current}


def rebound(acked: list[Attempt]) -> dict[str, list[str | None]]:
    """Sessions whose acknowledged turns name more than one thread (thread ids in acknowledgement order)."""
    threads: dict[str, list[str | None]] = defaultdict(list)
    for attempt in sorted(acked, key=lambda a: a.ended_at):
        if attempt.thread_id not in threads[attempt.session_id]:
            threads[attempt.session_id].append(attempt.thread_id)
    return {session_id: ids for session_id, ids in threads.items() if len(ids) > 1}


def wait_for_orphans(codex_home: Path, daemon: DaemonProcess, timeout: float) -> dict[int, tuple[int, str]]:
    """Give the killed daemons' children time to notice stdin EOF; returns those still there."""
    deadline = time.monotonic() + timeout
    while (left := orphans(codex_home, daemon)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


async def test_kill_9_under_traffic_loses_no_acknowledged_session(
    daemon: DaemonProcess, workdir: Path, codex_home: Path, codex_model_server: ModelServer
) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"chaos seed: CHAOS_SEED={seed}")
    rng = random.Random(seed)
    started = time.monotonic()

    # --- 50 rounds of traffic, each ended by a kill -9 and a restart --------------------------------
    traffic = TrafficLog()
    workers = [
        TrafficWorker(i, daemon.socket, workdir, SESSIONS, traffic, random.Random(rng.random())) for i in range(WORKERS)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop), name=f"chaos-worker-{i}") for i, w in enumerate(workers)]
    kills: list[tuple[int, int, float, int]] = []  # (round, ack target, delay, requests in flight)
    restart_s: list[float] = []
    max_stale_orphans = 0
    try:
        for round_no in range(1, ROUNDS + 1):
            round_start = len(traffic.acked())
            target = rng.choice(ROUND_ACK_TARGETS)
            delay = rng.uniform(0, MAX_KILL_DELAY_S)
            deadline = time.monotonic() + ROUND_TIMEOUT_S
            while len(traffic.acked()) - round_start < target:
                assert not traffic.unexpected(), f"seed {seed}, round {round_no}: {traffic.unexpected()}"
                assert not (moved := rebound(traffic.acked())), f"seed {seed}, round {round_no}: re-bound {moved}"
                assert time.monotonic() < deadline, (
                    f"seed {seed}, round {round_no}: {len(traffic.acked()) - round_start}/{target} turns "
                    f"acknowledged in {ROUND_TIMEOUT_S} s; daemon log tail:\n{daemon.log.read_text()[-4000:]}"
                )
                await asyncio.sleep(0.005)
            await asyncio.sleep(delay)
            # Reported, not asserted: children of daemons killed in earlier rounds that are still exiting
            # (mostly a killed daemon's `codex app-server generate-json-schema` probes). The end must have none.
            max_stale_orphans = max(max_stale_orphans, len(orphans(codex_home, daemon)))
            kills.append((round_no, target, round(delay, 3), len(traffic.in_flight())))
            daemon.kill9()
            t0 = time.monotonic()
            await asyncio.to_thread(daemon.start)
            restart_s.append(time.monotonic() - t0)
        traffic_s = time.monotonic() - started
    finally:
        stop.set()  # each worker finishes its current turn on the (restarted) daemon
        done, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
    assert not pending, f"seed {seed}: workers did not finish their last turn"
    for task in done:
        task.result()

    acked = traffic.acked()
    summary = (
        f"seed={seed} rounds={ROUNDS} workers={WORKERS} sessions={len(SESSIONS)} attempts={len(traffic.attempts)} "
        f"acked={len(acked)} connection_lost_in_flight={traffic.count('connection_lost')} "
        f"reconnects={traffic.reconnects} traffic_s={traffic_s:.1f} "
        f"restart_s(avg/max)={sum(restart_s) / len(restart_s):.2f}/{max(restart_s):.2f} "
        f"max_stale_codex_orphans={max_stale_orphans}"
    )
    print(summary)
    print(f"kills (round, ack target, delay s, in flight): {kills}")
    assert not traffic.unexpected(), f"{summary}\nunexpected outcomes: {traffic.unexpected()}"
    assert not traffic.in_flight(), summary

    by_session: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in sorted(acked, key=lambda a: a.ended_at):
        by_session[attempt.session_id].append(attempt)
    assert len(by_session) >= len(SESSIONS) // 2, f"too little traffic got through: {summary}"

    # --- what the clients were told is self-consistent ----------------------------------------------
    # A session's thread never changes once acknowledged, and every acknowledged turn saw one more user
    # message than the one before (no turn ran on a forked, re-created or rewound thread).
    expected_thread: dict[str, str] = {}
    for session_id, turns in by_session.items():
        threads = {a.thread_id for a in turns}
        assert len(threads) == 1, f"{summary}\n{session_id} re-bound: {[(a.text, a.thread_id) for a in turns]}"
        expected_thread[session_id] = str(turns[-1].thread_id)
        seen = [a.user_messages_seen for a in turns]
        assert None not in seen and seen == sorted(seen) and len(set(seen)) == len(seen), (  # type: ignore[type-var]
            f"{summary}\n{session_id}: user messages the model saw, per acknowledged turn: {seen}"
        )
    # ... and each really ran on the thread the client was told (the model's prompt_cache_key).
    by_text = {r.user_texts()[-1]: r for r in codex_model_server.requests if r.user_texts()}
    for attempt in acked:
        request = by_text.get(attempt.text)
        assert request is not None and request.body.get("prompt_cache_key") == attempt.thread_id, (
            f"{summary}\n{attempt}"
        )

    # --- the restarted daemon lists every acknowledged session on its acknowledged thread --------------
    listed = {info.session_id: info for info in (await list_sessions(daemon.socket)).sessions}
    assert {s: listed[s].thread_id if s in listed else None for s in expected_thread} == expected_thread, summary
    for session_id, turns in by_session.items():
        assert listed[session_id].turns >= len(turns), f"{summary}\n{listed[session_id]}"

    # --- one more turn on each session continues its thread with the whole acknowledged history -------
    conn = await connect(daemon.socket, "chaos-final")
    try:
        finals = [
            await send_turn(conn, Attempt(s, f"final {s}", -1, conn.daemon_pid, time.monotonic()), workdir)
            for s in SESSIONS
        ]
    finally:
        conn.close()
    recorded = codex_model_server.requests
    for final in finals:
        assert final.outcome == "acked", f"{summary}\n{final}"
        if final.session_id not in by_session:
            continue
        assert final.thread_id == expected_thread[final.session_id], f"{summary}\n{final}"
        request = next(r for r in reversed(recorded) if r.user_texts() and r.user_texts()[-1] == final.text)
        assert request.body.get("prompt_cache_key") == expected_thread[final.session_id], f"{summary}\n{final}"
        history = request.user_texts()
        assert final.user_messages_seen == len(history), f"{summary}\n{final}\n{history}"
        for attempt in by_session[final.session_id]:
            k = attempt.user_messages_seen
            assert k is not None and history[k - 1] == attempt.text, (
                f"{summary}\n{final.session_id}: acknowledged {attempt.text!r} (its turn saw {k} user messages) "
                f"is not where it was in the continued thread's history {history}"
            )

    # --- the Codex children of the 50 killed daemons are gone; only the final daemon's remain ---------
    left = await asyncio.to_thread(wait_for_orphans, codex_home, daemon, ORPHAN_EXIT_TIMEOUT_S)
    assert not left, f"{summary}\nleft-over codex processes (pid -> ppid, args): {left}"
    assert daemon.proc is not None
    own = {pid: info for pid, info in codex_processes(codex_home).items() if info[0] == daemon.proc.pid}
    assert len(own) <= 1, f"{summary}\nthe final daemon runs {own}"
    # --- the registry file survived 50 kills (read once the daemon, which locks it exclusively, is gone) --
    daemon.stop()
    db = sqlite3.connect(f"file:{daemon.state_dir / 'sessions.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], summary
        rows = dict(db.execute("SELECT session_id, thread_id FROM sessions").fetchall())
    finally:
        db.close()
    assert {s: rows.get(s) for s in expected_thread} == expected_thread, summary

    print(f"{summary} total_s={time.monotonic() - started:.1f}")
