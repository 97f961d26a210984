"""claif_cod: the OpenAI Codex CLI as a drop-in ``openai`` client."""

from claif_cod._version import __version__
from claif_cod.client import AsyncCodexClient, CodexClient
from claif_cod.engine.engine import ApprovalHandler, ApprovalRequest, Decision

__all__ = ["ApprovalHandler", "ApprovalRequest", "AsyncCodexClient", "CodexClient", "Decision", "__version__"]
