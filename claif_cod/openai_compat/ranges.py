"""The ranges OpenAI holds sampling parameters to. Codex takes none of them (they are reported), but
a value out of range is OpenAI's 400, in its words, so that a program does not first fail on OpenAI."""

from __future__ import annotations

from claif_cod.engine.errors import InvalidRequest

_DECIMALS = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2), "presence_penalty": (-2, 2)}
_UNBOUNDED = float("inf")
_INTEGERS = {
    "top_logprobs": (0, 20),
    "max_tokens": (1, _UNBOUNDED),
    "max_completion_tokens": (1, _UNBOUNDED),
    "max_output_tokens": (16, _UNBOUNDED),
}


def check_ranges(request: object) -> None:
    """Each of these parameters ``request`` has (Chat or Responses), within OpenAI's bounds."""
    for bounds, kind in ((_DECIMALS, "decimal"), (_INTEGERS, "integer")):
        for name, (low, high) in bounds.items():
            value = getattr(request, name, None)
            if value is None or low <= value <= high:
                continue
            if value > high:
                side, extreme, limit = "above", "max", f"<= {high}"
            else:
                side, extreme, limit = "below", "min", f">= {low}"
            message = (
                f"Invalid '{name}': {kind} {side} {extreme}imum value. "
                f"Expected a value {limit}, but got {value:g} instead."
            )
            raise InvalidRequest(message, param=name, code=f"{kind}_{side}_{extreme}_value")
