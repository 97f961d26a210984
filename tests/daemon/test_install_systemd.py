"""`claif-codd install-systemd` writes user units that point at this installation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from claif_codd.cli import main


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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_installed_units_verify(tmp_path: Path) -> None:
    units = tmp_path / "units"
    CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(units), "--no-enable"])
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(units / "claif-codd.socket"), str(units / "claif-codd.service")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


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
    assert f"{serve} --http 8765 --http-token-file '{token}'\n" in service
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
    result = CliRunner().invoke(main, ["install-systemd", "--unit-dir", str(tmp_path / "units")])
    assert result.exit_code == 1
    assert (tmp_path / "units" / "claif-codd.socket").exists()
    why = "Failed to connect to bus: No such file or directory" if systemctl == "failing" else "[Errno 2] No such file"
    assert f"systemctl --user daemon-reload failed: {why}" in result.output
    assert (
        f"the units stay in {tmp_path / 'units'}: enable them with `systemctl --user daemon-reload && " in result.output
    )
    assert "once systemctl --user works, or, without systemd, start claif-codd on login with" in result.output
    assert "`claif-codd start --idle-timeout 3600`" in result.output
