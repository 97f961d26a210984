"""`claif-codd install-systemd` writes user units that point at this installation."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from claif_codd.cli import main
from claif_codd.systemd_units import UNIT_FILES


@pytest.fixture(autouse=True)
def _clients_look_where_the_units_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's own ``$CLAIF_COD_SOCKET`` (a path nothing listens on) would send clients elsewhere
    than the units listen: install-systemd refuses that (see the tests at the end)."""
    monkeypatch.delenv("CLAIF_COD_SOCKET")


def test_units_are_written_with_this_interpreter(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(tmp_path), "--no-enable"])
    assert result.exit_code == 0, result.output
    service = (tmp_path / "claif-codd.service").read_text()
    assert f"ExecStart={sys.executable} -m claif_codd serve --log-format json" in service
    assert "Type=notify" in service
    socket_unit = (tmp_path / "claif-codd.socket").read_text()
    assert "SocketMode=0600" in socket_unit
    assert "DirectoryMode=0700" in socket_unit
    assert "systemctl --user enable --now claif-codd.socket" in result.output


def _verify(tmp_path: Path, units: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of the installed units: it also checks that ExecStart's program exists."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["systemd-analyze", "--user", "verify", str(units / "claif-codd.socket"), str(units / "claif-codd.service")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_installed_units_verify(tmp_path: Path) -> None:
    units = tmp_path / "units"
    CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(units), "--no-enable"])
    out = _verify(tmp_path, units)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_an_interpreter_under_a_path_with_blanks_and_percent_signs_is_the_one_systemd_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv in ``~/My Projects``: written as it is, systemd would start ``~/My`` (and expand
    ``%h`` to the home directory).  (systemd refuses an executable whose path has quotes in it.)"""
    bin_dir = tmp_path / "My Projects 100%h" / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python3"
    python.symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(python))
    units = tmp_path / "units"
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(units), "--no-enable"])
    assert result.exit_code == 0, result.output
    out = _verify(tmp_path, units)
    assert out.returncode == 0, out.stderr


def _systemd_words(line: str) -> list[str]:
    """systemd's reading of an ExecStart= command line (systemd.service(5), "Command lines"): ``%%``
    is ``%``, words split at blanks, quotes anywhere in a word, C escapes in and out of quotes, ``$$``
    is ``$`` (``${VAR}`` is expanded).  Only what ``exec_word`` and the packaged unit write: no other
    escape or variable, no specifier but the unit's own ``%t`` (kept as it is)."""
    assert not re.search(r"%[^%t]", line.replace("%%", "")), line
    text = line.replace("%%", "%")
    words: list[str] = []
    word: str | None = None
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt == "x":
                word = (word or "") + chr(int(text[i + 2 : i + 4], 16))
                i += 4
                continue
            assert nxt in '\\"', line
            word = (word or "") + nxt
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            else:
                word = (word or "") + ch
        elif ch in "'\"":
            quote, word = ch, word or ""
        elif ch == " ":
            if word is not None:
                words.append(word)
            word = None
        else:
            word = (word or "") + ch
        i += 1
    assert not quote, line
    if word is not None:
        words.append(word)
    return [words[0], *(_without_variables(w) for w in words[1:])]


def _without_variables(word: str) -> str:
    """An argument as systemd runs it: ``$$`` is a ``$``; a ``${VAR}`` would be expanded, which
    ``exec_word`` must never leave."""
    parts = word.split("$$")
    assert not any("${" in part for part in parts), word
    return "$".join(parts)


@pytest.mark.parametrize(
    "path",
    ["token", "my token", "100%h", "$HOME and ${HOME}", "it's", 'say "hi"', "back\\slash", "line\nbreak", "tab\tx"],
)
def test_serve_arguments_reach_the_daemon_as_given(tmp_path: Path, path: str) -> None:
    working_dir = tmp_path / path
    working_dir.mkdir()
    install = ["install-systemd", "--unit-dir", str(tmp_path / "u"), "--no-enable", "--http", "8765"]
    result = CliRunner().invoke(main, [*install, "--http-working-dir", str(working_dir)])
    assert result.exit_code == 0, result.output
    service = (tmp_path / "u" / "claif-codd.service").read_text()
    [exec_start] = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    words = _systemd_words(exec_start.removeprefix("ExecStart="))
    assert words[-2:] == ["--http-working-dir", str(working_dir)]
    assert words[:4] == [sys.executable, "-m", "claif_codd", "serve"]


def test_http_endpoint_is_passed_to_serve_and_the_service_starts_at_login(tmp_path: Path) -> None:
    token = tmp_path / "token file"
    token.write_text("t0ken")
    token.chmod(0o600)
    result = CliRunner().invoke(
        main,
        [
            "install-systemd",
            "--unit-dir",
            str(tmp_path / "u"),
            "--no-enable",
            "--http",
            "8765",
            "--http-token-file",
            str(token),
        ],
    )
    assert result.exit_code == 0, result.output
    service = (tmp_path / "u" / "claif-codd.service").read_text()
    serve = "serve --log-format json --socket %t/claif-cod/codd.sock"
    assert f'{serve} --http 8765 --http-token-file "{token}"\n' in service
    assert "t0ken" not in service  # the token stays in its file
    assert "systemctl --user enable --now claif-codd.socket claif-codd.service" in result.output


def test_a_token_only_in_the_environment_is_refused_since_the_service_would_not_see_it(tmp_path: Path) -> None:
    for listen in ("8765", "0.0.0.0:8765"):  # on loopback it would serve without one; beyond, not start at all
        result = CliRunner().invoke(
            main,
            ["install-systemd", "--unit-dir", str(tmp_path / "u"), "--no-enable", "--http", listen],
            env={"CLAIF_CODD_HTTP_TOKEN": "t0ken"},
        )
        assert result.exit_code == 2 and "does not see $CLAIF_CODD_HTTP_TOKEN" in result.output
        assert not (tmp_path / "u").exists()


def test_http_settings_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(tmp_path / "u"), "--http", "0.0.0.0:80"])
    assert result.exit_code == 2 and "needs a bearer token" in result.output
    # Only the way the service can take: it offered $CLAIF_CODD_HTTP_TOKEN, which install-systemd then refuses.
    assert "--http-token-file FILE" in result.output and "$CLAIF_CODD_HTTP_TOKEN" not in result.output
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize("systemctl", ["failing", "absent"])
def test_without_a_systemd_user_session_the_error_says_what_to_do_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, systemctl: str
) -> None:
    """A machine without systemd (or without a user bus): the units are written, and the error says
    where, how to enable them later, and how to start the daemon on login without systemd."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if systemctl == "failing":
        fake = bin_dir / "systemctl"
        fake.write_text("#!/bin/sh\necho 'Failed to connect to bus: No such file or directory' >&2\nexit 1\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    units = tmp_path / "config" / "systemd" / "user"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    result = CliRunner().invoke(main, ["install-systemd"])
    assert result.exit_code == 1
    assert (units / "claif-codd.socket").exists()
    why = "Failed to connect to bus: No such file or directory" if systemctl == "failing" else "[Errno 2] No such file"
    assert f"systemctl --user daemon-reload failed: {why}" in result.output
    assert f"the units stay in {units}: enable them with `systemctl --user daemon-reload && " in result.output
    assert "once systemctl --user works, or, without systemd, start claif-codd on login with" in result.output
    assert "`claif-codd start --idle-timeout 3600`" in result.output


def test_units_and_the_directories_made_for_them_are_closed_to_others_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit's ``ExecStart`` runs as you: under umask 000 the units were 0666 in 0777 directories, which
    any local user could rewrite to have their command started at your next login or connection."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "claif-codd.service").write_text("left by an older install\n")
    (stale / "claif-codd.service").chmod(0o666)
    old = os.umask(0)
    try:
        for args in ([], ["--unit-dir", str(stale)]):
            result = CliRunner().invoke(main, ["install-systemd", "--no-enable", *args])
            assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    units = config / "systemd" / "user"
    for directory in (config, config / "systemd", units):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for unit in [units / name for name in UNIT_FILES] + [stale / name for name in UNIT_FILES]:
        assert stat.S_IMODE(unit.stat().st_mode) == 0o644, unit
    assert "ExecStart=" in (stale / "claif-codd.service").read_text()


def test_a_socket_path_in_the_environment_that_the_units_do_not_listen_on_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket unit listens on ``%t/claif-cod/codd.sock``: with ``$CLAIF_COD_SOCKET`` elsewhere the
    service was installed and enabled, and no client of that environment ever reached it."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(tmp_path / "mine.sock"))
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(tmp_path / "u"), "--no-enable"])
    assert result.exit_code == 2
    assert f"the units listen on {runtime / 'claif-cod' / 'codd.sock'} (%t/claif-cod/codd.sock)" in result.output
    assert f"$CLAIF_COD_SOCKET sends this environment's clients to {tmp_path / 'mine.sock'}" in result.output
    assert not (tmp_path / "u").exists()
    monkeypatch.delenv("XDG_RUNTIME_DIR")  # where the units listen is then unknown here: refused as well
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(tmp_path / "u"), "--no-enable"])
    assert result.exit_code == 2 and "the units listen on $XDG_RUNTIME_DIR/claif-cod/codd.sock" in result.output
    assert not (tmp_path / "u").exists()


def test_a_socket_path_in_the_environment_that_the_units_listen_on_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(runtime / "claif-cod" / "codd.sock"))
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(tmp_path / "u"), "--no-enable"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "u" / "claif-codd.socket").exists()


def _recording_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``systemctl`` that succeeds and writes each command line it got to the returned file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl-calls"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return calls


def test_units_written_outside_systemds_search_path_are_linked_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``systemctl --user enable claif-codd.socket`` finds a unit only in systemd's search path: with
    ``--unit-dir`` elsewhere the units are linked into it first (said so with ``--no-enable`` too)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    calls = _recording_systemctl(tmp_path, monkeypatch)
    units = tmp_path / "units"
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(units)])
    assert result.exit_code == 0, result.output
    linked = f"--user link {units / 'claif-codd.socket'} {units / 'claif-codd.service'}"
    assert calls.read_text().splitlines() == [linked, "--user daemon-reload", "--user enable --now claif-codd.socket"]
    hint = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(units), "--no-enable"])
    assert f"enable with: systemctl {linked} && systemctl --user daemon-reload && " in hint.output

    data_home = tmp_path / "home" / ".local" / "share" / "systemd" / "user"
    for args in ([], ["--unit-dir", str(data_home)]):  # the default, and another folder systemd looks in
        calls.unlink()
        result = CliRunner().invoke(main, ["install-systemd", *args])
        assert result.exit_code == 0, result.output
        assert calls.read_text().splitlines() == ["--user daemon-reload", "--user enable --now claif-codd.socket"]
