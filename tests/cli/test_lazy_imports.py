"""``--version`` and ``import claif_cod`` do not import openai, which alone takes seconds on a cold disk."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

HEAVY = ("openai", "httpx2", "aiohttp", "pydantic")

REPORT = f"""
import sys
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print("heavy:", ",".join(heavy) or "none")
"""


def run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code + REPORT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize(("module", "name"), [("claif_cod.cli", "claif-cod"), ("claif_codd", "claif-codd")])
def test_version_imports_no_openai(module: str, name: str) -> None:
    code = f"""
import sys
from {module} import main
sys.argv = ["{name}", "--version"]
try:
    main()
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
"""
    out = run(code)
    assert out[0].startswith(f"{name}, version ")
    assert out[-1] == "heavy: none"


def test_the_package_imports_its_clients_on_first_use() -> None:
    assert run("import claif_cod") == ["heavy: none"]
    out = run("import openai, claif_cod\nprint(issubclass(claif_cod.CodexClient, openai.OpenAI))")
    assert out[0] == "True"
    with pytest.raises(AssertionError, match="no attribute 'Nope'"):
        run("import claif_cod\nclaif_cod.Nope")


def test_a_client_imports_openais_responses_resource_on_first_use() -> None:
    """openai's Responses resource brings its streaming helpers (~75 ms of a fresh process): a
    script that only chats does not pay for them."""
    code = """
import sys
from claif_cod import AsyncCodexClient, CodexClient
loaded = lambda: "openai.resources.responses.responses" in sys.modules
clients = [CodexClient(daemon="off"), AsyncCodexClient(daemon="off")]
for client in clients:
    client.chat.completions
    client.with_raw_response.chat.completions
    client.models
print("after chat:", loaded())
print(type(clients[0].responses).__name__, type(clients[1].responses).__name__, "after responses:", loaded())
clients[0].close()
"""
    out = run(code)
    assert out[:2] == ["after chat: False", "CodexResponses AsyncCodexResponses after responses: True"]


CTRL_C_WHILE_LOADING = """
import os, signal, sys


class CtrlCAsTheCommandLoads:
    def find_spec(self, name, path, target=None):
        if name == {command!r}:
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, CtrlCAsTheCommandLoads())
sys.argv = [{name!r}, "--version"]
from {script} import main  # what the installed script runs
sys.exit(main())
"""


@pytest.mark.parametrize(
    ("script", "command", "name"),
    [("claif_cod.cli", "claif_cod.cli.main", "claif-cod"), ("claif_codd", "claif_codd.cli", "claif-codd")],
)
def test_ctrl_c_while_the_command_loads_is_an_interruption_not_a_traceback(
    script: str, command: str, name: str
) -> None:
    """Ctrl-C in the fifth of a second the command takes to import was a traceback of whatever
    import it cut short (``json``, ``asyncio``...), and Python's death by SIGINT."""
    code = CTRL_C_WHILE_LOADING.format(script=script, command=command, name=name)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", f"\n{name}: interrupted\n")


def test_the_installed_scripts_run_the_lazy_entry_points() -> None:
    """The scripts installed are the entry points above, not the commands themselves."""
    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.startswith("claif-cod")}
    assert scripts == {"claif-cod": "claif_cod.cli:main", "claif-codd": "claif_codd:main"}
