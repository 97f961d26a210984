"""``python -m claif_cod.testing`` stops on SIGTERM or Ctrl-C wherever the signal lands.  Python runs a
signal handler in the main thread between two of its bytecodes, also while that thread holds a lock:
the handler set a ``threading.Event`` whose ``wait()`` the main thread had begun, holding the Event's
lock, which ``set()`` takes too.  The server never stopped (and no later signal could stop it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HANG_GUARD_S = 60.0
"""Not a timing: a server still running this long after its signals never stops."""

# Each call, return and C call the main thread makes once the server has started (its wait among them)
# raises SIGTERM there: the handler runs at that point, whatever the thread holds then.
SCRIPT = textwrap.dedent(
    """
    import signal, sys
    from claif_cod.testing import __main__ as cli
    from claif_cod.testing.model_server import ModelServer

    armed = False

    def profile(frame, event, arg):
        global armed
        if event == "return" and frame.f_code is ModelServer.__enter__.__code__:
            armed = True
        elif armed:
            signal.raise_signal(signal.SIGTERM)

    sys.setprofile(profile)
    code = cli.main([])
    sys.setprofile(None)
    sys.exit(code)
    """
)


def test_the_command_line_stops_on_a_signal_landing_anywhere_in_its_wait() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the model server did not stop on SIGTERM: its signal handler deadlocked") from None
    assert proc.returncode == 0, err
    assert out.startswith("export CODEX_HOME=")
    assert "served 0 requests" in err
