"""openai's response objects, built by pydantic's validation where that gives openai's own result.

openai builds every object it returns with ``construct_type`` (no validation): a walk over the
type's annotations in Python, ~0.08 ms for a ``ChatCompletion`` and ~0.06 ms for every streamed
chunk, three to four times that right after a turn, when the code is cold.  pydantic validates
the same data in its compiled core in ~0.003-0.005 ms and, for data that validates, builds an
equal object (the one openai's strict mode returns; pydantic also lists extra keys in
``model_fields_set``, which ``construct_type`` leaves out).  Data that does not validate is built by
openai's ``construct_type``, as before.  Only the types whose equality tests/integration/
test_openai_objects.py checks take this path (the Responses stream events claif_cod sends, each as
the class openai's discriminator picks by its ``type``); anything else is openai's alone.
"""

from __future__ import annotations

import json
import typing
from typing import Any, cast

import openai
import pydantic
from openai._models import add_request_id, construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from claif_cod.openai_compat.responses_schema import ResponseEvent

VALIDATED: frozenset[type[openai.BaseModel]] = frozenset({ChatCompletion, ChatCompletionChunk, Response})


def _event_classes() -> dict[str, type[openai.BaseModel]]:
    """openai's class for each Responses stream event claif_cod sends, by its ``type``."""
    (union, *_) = typing.get_args(ResponseStreamEvent)  # Annotated[Union[...], discriminator]
    by_type = {
        literal: cls
        for cls in typing.get_args(union)
        for literal in typing.get_args(cls.model_fields["type"].annotation)
    }
    return {
        event.__struct_config__.tag: by_type[event.__struct_config__.tag] for event in typing.get_args(ResponseEvent)
    }


EVENTS = _event_classes()


def from_json(cast_to: type[openai.BaseModel], body: bytes) -> openai.BaseModel:
    """What openai's pipeline returns for a 200 response with ``body``, with the request id it
    sets (None: claif_cod's responses carry none)."""
    try:
        parsed = cast_to.model_validate_json(body)
    except pydantic.ValidationError:
        parsed = cast(openai.BaseModel, construct_type(type_=cast_to, value=json.loads(body)))  # as openai reads it
    add_request_id(parsed, None)
    return parsed


def event_from_json(client: Any, cast_to: Any, data: bytes, response: Any) -> Any:
    """A streamed chunk or event as the client's ``Stream`` builds it from its JSON ``data``: a type
    whose equality is checked is validated from the JSON itself (openai would parse it with
    ``json.loads`` and check it for an ``error`` key first: ~8 µs a chunk hot, against ~3); the
    others go through the client's own ``_process_response_data``."""
    if cast_to in VALIDATED:
        try:
            return cast_to.model_validate_json(data)
        except pydantic.ValidationError:
            pass
    return client._process_response_data(data=json.loads(data), cast_to=cast_to, response=response)


class FastObjects:
    """Mixed into both clients (before openai's classes): their ``Stream`` chunks, raw responses'
    ``parse()`` and every other object openai builds go through here."""

    def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
        validated = _validated_class(cast_to, data)
        if validated is not None:
            try:
                return validated.model_validate(data)
            except pydantic.ValidationError:
                pass
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)  # type: ignore[misc]


def _validated_class(cast_to: Any, data: object) -> type[openai.BaseModel] | None:
    if cast_to in VALIDATED:
        return cast(type[openai.BaseModel], cast_to)
    if cast_to == ResponseStreamEvent and isinstance(data, dict):
        return EVENTS.get(data.get("type"))  # type: ignore[arg-type]
    return None
