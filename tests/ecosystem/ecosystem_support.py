"""Helpers of the ecosystem layer's tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from claif_cod.testing import ModelServer, RecordedRequest

INSTALL_HINT = "pip install -e '.[ecosystem]'"


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
