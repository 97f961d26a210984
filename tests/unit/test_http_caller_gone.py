"""A request of ``serve --http`` tells its turn when its client has hung up (``RequestOptions.caller_gone``):
from the moment its connection is closing, a loop step before the handler's cancellation, so that the
task reading a stream's turn does not take the turn's end as an answer nobody gets (see
``tests/integration/test_session_caller_gone.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

from aiohttp.test_utils import make_mocked_request

from claif_codd.http.request_options import request_options
from claif_codd.http.settings import HttpSettings


def test_a_requests_options_say_when_its_client_has_hung_up(tmp_path: Path) -> None:
    transport = mock.Mock()
    transport.is_closing.return_value = False
    request = make_mocked_request("POST", "/v1/chat/completions", transport=transport)
    options = request_options(request, HttpSettings("127.0.0.1", 0, working_dir=str(tmp_path)), print)
    assert not options.caller_gone()
    transport.is_closing.return_value = True  # the peer's FIN or RST was read: connection_lost comes next
    assert options.caller_gone()
    protocol: Any = request.protocol
    protocol.transport = None  # as aiohttp leaves it once connection_lost ran
    assert options.caller_gone()
