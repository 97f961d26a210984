"""Helpers of the ecosystem layer's tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util

import pytest

from claif_cod.testing import ModelServer, RecordedRequest

INSTALL_HINT = "pip install 'claif_cod[ecosystem]'"


class Requests:
    """The module's model server, seen one test at a time."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self.start = 0

    def mark(self) -> None:
        self.start = len(self.server.requests)

    def since(self) -> list[RecordedRequest]:
        """Requests the model received since this test began."""
        return self.server.requests[self.start :]


needs_responses = pytest.mark.xfail(
    importlib.util.find_spec("claif_cod.openai_compat.responses_service") is None,
    reason="the Responses API (client.responses, /v1/responses: issue 9 §2) is not in this build yet",
    strict=True,
)
"""For the tests of the Responses API paths: expected to fail exactly while that feature is missing."""
