"""claif_cod: the OpenAI Codex CLI as a drop-in ``openai`` client."""

from claif_cod._version import __version__
from claif_cod.client import AsyncCodexClient, CodexClient
from claif_cod.engine.engine import ApprovalRequest

__all__ = ["ApprovalRequest", "AsyncCodexClient", "CodexClient", "__version__"]
