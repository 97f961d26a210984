"""``CodexClient`` and ``AsyncCodexClient``: the ``openai`` clients, answered by Codex.

They are real ``openai.OpenAI`` / ``openai.AsyncOpenAI`` instances whose HTTP transport
is claif_cod, so every type, stream and exception is openai's own.
"""

from __future__ import annotations

import errno
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import httpx2
import openai
from openai.resources.chat import AsyncChat, Chat
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from claif_cod._defaults import DEFAULT_TIMEOUT
from claif_cod._utf8 import is_utf8
from claif_cod.client_copy import Copyable
from claif_cod.engine.approvals import ApprovalHandler, decline_all
from claif_cod.engine.config import CodexConfig
from claif_cod.event_stream import AsyncEventStream, EventStream
from claif_cod.fast_create import CHAT, defaulted, fast_or_openai, fast_or_openai_async, stream_class
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_objects import FastObjects
from claif_cod.transport.early import CHAT_PATH
from claif_cod.transport.httpx_transport import AsyncCodexTransport, CodexTransport
from claif_cod.transport.select import DaemonMode, SelectingBackend, daemon_mode
from claif_cod.transport.transport_core import TransportCore

if TYPE_CHECKING:
    from openai.resources.responses import AsyncResponses, Responses

BASE_URL = "http://claif-cod.invalid/v1"
"""Never contacted: the transport answers every request itself."""

_NO_KEY = "codex-local-auth"
"""What openai sees as the key when Codex uses its own login; it is never passed to Codex."""


def _current_dir() -> str:
    """The default working directory; one removed under the process (a deleted worktree) said plainly."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, "the current directory no longer exists: give the client a working_dir"
        ) from None


def _path(setting: str, given: str | os.PathLike[str]) -> str:
    """``given`` made absolute (a leading ``~``: the user's home).  A path whose bytes are not UTF-8
    (Python holds them as lone surrogates) is refused here, naming the setting: Codex takes its
    directories as JSON strings, so such a path failed every request, in-process as a 500
    "internal error" (UnicodeEncodeError) and through the daemon as a bare UnicodeEncodeError."""
    path = os.path.abspath(os.path.expanduser(given))
    if not is_utf8(path):
        raise ValueError(f"{setting} {path!r} is not valid UTF-8: Codex takes only UTF-8 paths")
    return path


def _api_key(key: str | None) -> str | None:
    """``key``, refused when it holds a control character (a line end read with it from a file, most
    often): Codex gets it in its environment, which ends it at a NUL, and sent a request without any
    ``Authorization`` for a key with a line end, so the model's server said the key was wrong or
    missing, and nothing said why."""
    if key is not None and any(ch < " " or ch == "\x7f" for ch in key):
        raise ValueError("api_key holds a control character (a line end read with it from a file?)")
    return key


def _options(
    *,
    api_key: str | None,
    codex_path: str | None,
    codex_home: str | None,
    working_dir: str | os.PathLike[str] | None,
    model: str | None,
    sandbox_mode: str | None,
    approval_policy: str | None,
    session_id: str | None,
    strict: bool,
    approval_handler: ApprovalHandler | None,
) -> RequestOptions:
    if session_id is not None and not isinstance(session_id, str):
        # Said now: sent on, it failed each request as an APIConnectionError (openai retried it) through
        # the daemon and as a retried 500 in-process, naming neither the client nor the parameter.
        raise TypeError(f"session_id must be a str (a session's name) or None, not {type(session_id).__name__}")
    return RequestOptions(
        config=CodexConfig(
            working_dir=_path("working_dir", working_dir)
            if working_dir is not None
            else _path("the current directory (the default working_dir)", _current_dir()),
            codex_path=os.path.abspath(os.path.expanduser(codex_path)) if codex_path else None,
            codex_home=_path("codex_home", codex_home) if codex_home is not None else None,
            api_key=_api_key(api_key),
            sandbox_mode=sandbox_mode,
            approval_policy=approval_policy,
        ),
        default_model=model,
        strict=strict,
        session_id=session_id,
        approvals=approval_handler or decline_all,
    )


def _core(client: object, options: RequestOptions, mode: DaemonMode) -> TransportCore:
    """The client's transport core, released when the client is garbage-collected unclosed.

    A client a script drops (or a framework holds until the end) must leave quietly: its loop
    closes the daemon connection or the Codex children and ends; ``loop_thread`` waits for that
    at interpreter exit.
    """
    core = TransportCore(options, mode)
    core.attach(client)
    return core


# The stream classes create() returns, subscripted once rather than on every call.
_CHUNKS = stream_class(EventStream[ChatCompletionChunk])
_ASYNC_CHUNKS = stream_class(AsyncEventStream[ChatCompletionChunk])


class _Completions(Completions):
    if not TYPE_CHECKING:

        def create(self, **kwargs: Any) -> Any:
            kwargs = defaulted(self._client, kwargs)
            return fast_or_openai(super().create, self, kwargs, CHAT, CHAT_PATH, ChatCompletion, _CHUNKS)

        def parse(self, **kwargs: Any) -> Any:
            return super().parse(**defaulted(self._client, kwargs))

        def stream(self, **kwargs: Any) -> Any:
            return super().stream(**defaulted(self._client, kwargs))


class _Chat(Chat):
    @cached_property
    def completions(self) -> Completions:
        return _Completions(self._client)


class _AsyncCompletions(AsyncCompletions):
    if not TYPE_CHECKING:

        async def create(self, **kwargs: Any) -> Any:
            kwargs = defaulted(self._client, kwargs)
            return await fast_or_openai_async(
                super().create, self, kwargs, CHAT, CHAT_PATH, ChatCompletion, _ASYNC_CHUNKS
            )

        async def parse(self, **kwargs: Any) -> Any:
            return await super().parse(**defaulted(self._client, kwargs))

        def stream(self, **kwargs: Any) -> Any:
            return super().stream(**defaulted(self._client, kwargs))


class _AsyncChat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _AsyncCompletions(self._client)


class CodexClient(Copyable, FastObjects, openai.OpenAI):
    """``openai.OpenAI`` backed by the Codex CLI (through claif-codd when it runs)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        codex_path: str | None = None,
        working_dir: str | os.PathLike[str] | None = None,
        model: str | None = None,
        sandbox_mode: str | None = None,
        approval_policy: str | None = None,
        timeout: float | httpx2.Timeout | None = DEFAULT_TIMEOUT,
        daemon: DaemonMode | None = None,
        session_id: str | None = None,
        codex_home: str | None = None,
        strict: bool = False,
        approval_handler: ApprovalHandler | None = None,
        max_retries: int = 0,
    ) -> None:
        options = _options(
            api_key=api_key,
            codex_path=codex_path,
            codex_home=codex_home,
            working_dir=working_dir,
            model=model,
            sandbox_mode=sandbox_mode,
            approval_policy=approval_policy,
            session_id=session_id,
            strict=strict,
            approval_handler=approval_handler,
        )
        self._claif_default_model = model
        self._claif_urls: dict[str, tuple[httpx2.URL, httpx2.URL]] = {}  # see fast_create._url
        self._claif_not_plain = False  # see fast_create.create
        self.daemon_mode: Literal["auto", "require", "off"] = daemon_mode(daemon)
        self._core = _core(self, options, self.daemon_mode)
        super().__init__(
            api_key=api_key or _NO_KEY,
            base_url=BASE_URL,
            timeout=timeout,
            max_retries=max_retries,
            http_client=httpx2.Client(transport=CodexTransport(self._core), timeout=timeout),
        )

    @cached_property
    def chat(self) -> Chat:
        return _Chat(self)

    @cached_property
    def responses(self) -> Responses:
        from claif_cod.responses_resource import CodexResponses  # see there: imported on first use

        return CodexResponses(self)

    @property
    def backend(self) -> SelectingBackend | None:
        """The backend serving this client once a request was made (daemon or in-process)."""
        return self._core.backend


class AsyncCodexClient(Copyable, FastObjects, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` backed by the Codex CLI (through claif-codd when it runs)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        codex_path: str | None = None,
        working_dir: str | os.PathLike[str] | None = None,
        model: str | None = None,
        sandbox_mode: str | None = None,
        approval_policy: str | None = None,
        timeout: float | httpx2.Timeout | None = DEFAULT_TIMEOUT,
        daemon: DaemonMode | None = None,
        session_id: str | None = None,
        codex_home: str | None = None,
        strict: bool = False,
        approval_handler: ApprovalHandler | None = None,
        max_retries: int = 0,
    ) -> None:
        options = _options(
            api_key=api_key,
            codex_path=codex_path,
            codex_home=codex_home,
            working_dir=working_dir,
            model=model,
            sandbox_mode=sandbox_mode,
            approval_policy=approval_policy,
            session_id=session_id,
            strict=strict,
            approval_handler=approval_handler,
        )
        self._claif_default_model = model
        self._claif_urls: dict[str, tuple[httpx2.URL, httpx2.URL]] = {}  # see fast_create._url
        self._claif_not_plain = False  # see fast_create.create
        self.daemon_mode: Literal["auto", "require", "off"] = daemon_mode(daemon)
        self._core = _core(self, options, self.daemon_mode)
        super().__init__(
            api_key=api_key or _NO_KEY,
            base_url=BASE_URL,
            timeout=timeout,
            max_retries=max_retries,
            http_client=httpx2.AsyncClient(transport=AsyncCodexTransport(self._core), timeout=timeout),
        )

    @cached_property
    def chat(self) -> AsyncChat:
        return _AsyncChat(self)

    @cached_property
    def responses(self) -> AsyncResponses:
        from claif_cod.responses_resource import AsyncCodexResponses  # see there: imported on first use

        return AsyncCodexResponses(self)

    @property
    def backend(self) -> SelectingBackend | None:
        return self._core.backend
