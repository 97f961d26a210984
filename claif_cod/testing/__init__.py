"""Offline testing kit: a scripted Responses-API model server and a matching ``CODEX_HOME``.

Lets code built on ``claif_cod`` be tested against the real Codex binary without network
access or API keys. The pytest fixtures live in :mod:`claif_cod.testing.pytest_plugin`.
"""

from claif_cod.testing.codex_home import model_catalog, write_codex_home
from claif_cod.testing.model_server import ModelServer
from claif_cod.testing.recorded import FunctionCall, FunctionOutput, RecordedRequest

__all__ = ["FunctionCall", "FunctionOutput", "ModelServer", "RecordedRequest", "model_catalog", "write_codex_home"]
