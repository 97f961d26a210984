"""One choice's answer text as Codex streams it: several messages, retries, stop sequences.

OpenAI streams cannot take text back, so after a Codex retry the re-sent prefix is
swallowed and only new text goes out; a retry that contradicts what was already sent is
an error rather than silently garbled output.  Stop sequences follow OpenAI: generation
ends where the first stop sequence is *completed*, whatever the chunking.
"""

from __future__ import annotations

MESSAGE_SEPARATOR = "\n\n"


class RetryDiverged(Exception):
    """Codex's retry produced text that contradicts what was already streamed."""


class ChoiceText:
    def __init__(self, stop: tuple[str, ...] = (), *, streaming: bool = True) -> None:
        self._stop = stop
        self._streaming = streaming
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._order: list[str] = []
        self._texts: dict[str, str] = {}
        self._visible = ""
        self._scanned = 0
        self.sent = ""
        self.stopped = False

    @property
    def text(self) -> str:
        """The answer so far, cut before the first completed stop sequence."""
        return self._visible

    def delta(self, item_id: str, delta: str) -> str:
        """Add streamed text; returns what may be sent to the client now."""
        if self.stopped:
            return ""
        previous = self._texts.get(item_id)
        if previous is None:
            self._order.append(item_id)
            previous = ""
        self._texts[item_id] = previous + delta
        if item_id == self._order[-1] and (previous or not self._visible):
            self._visible += delta  # the common case: appending to the last message
        else:
            self._rebuild()
        if not (self._stop or self._streaming):
            return ""  # a whole completion without stop sequences: nothing to cut or send yet
        return self._release(final=False)

    def reset(self, item_id: str) -> None:
        if item_id in self._texts and not self.stopped:
            self._texts[item_id] = ""
            self._rebuild()

    def complete(self, item_id: str, text: str) -> str:
        """Codex's final text of a message is authoritative."""
        if self.stopped:
            return ""
        if item_id not in self._texts:
            self._order.append(item_id)
        self._texts[item_id] = text
        self._rebuild()
        return self._release(final=False)

    def withhold(self, item_id: str) -> None:
        """Moderation hid this message: drop its text.  What a stream already sent stays sent."""
        if item_id not in self._texts:
            self._order.append(item_id)
        self._texts[item_id] = ""
        self._rebuild()
        if self._streaming and not self._visible.startswith(self.sent):
            self._visible = self.sent

    def finish(self) -> str:
        """The rest, once the turn is over (nothing is held back for stop sequences any more)."""
        return self._release(final=True)

    def _rebuild(self) -> None:
        self._visible = MESSAGE_SEPARATOR.join(t for i in self._order if (t := self._texts[i]))
        self._scanned = 0

    def _release(self, *, final: bool) -> str:
        self._apply_stop()
        if not self._streaming:
            return ""
        visible = self._visible
        if not visible.startswith(self.sent):
            if self.sent.startswith(visible) and not (final or self.stopped):
                return ""  # a retry is re-sending what the client already has
            raise RetryDiverged("Codex retried the model request and the new text differs from what was streamed")
        end = len(visible) if final or self.stopped else max(len(self.sent), len(visible) - self._hold)
        out = visible[len(self.sent) : end]
        self.sent += out
        return out

    def _apply_stop(self) -> None:
        """Cut at the first position where some stop sequence ends, scanning only new text."""
        if not self._stop or self.stopped:
            return
        text = self._visible
        for end in range(self._scanned + 1, len(text) + 1):
            for stop in self._stop:
                if text.endswith(stop, 0, end):
                    self._visible = text[: end - len(stop)]
                    self.stopped = True
                    return
        self._scanned = len(text)
