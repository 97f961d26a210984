"""One choice's answer text as Codex streams it: several messages, retries, stop sequences.

OpenAI streams cannot take text back, so after a Codex retry the re-sent prefix is
swallowed and only new text goes out; a retry that contradicts what was already sent is
an error rather than silently garbled output.  Stop sequences follow OpenAI: generation
ends where the first stop sequence is *completed*, whatever the chunking.
"""

from __future__ import annotations

from claif_cod.engine.wire_items import AgentMessageItem

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
        self._extends_sent = True
        """``_visible`` is known to start with ``sent`` (it only grew since that was checked)."""
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
        # Each text grows in place: held by no other reference while it grows, a str is resized,
        # not copied (a copy per delta made a long answer's stream quadratic: 40 000 deltas, ~3 s).
        previous = self._texts.pop(item_id, None)
        if previous is None:
            self._order.append(item_id)
            previous = ""
        appends = item_id == self._order[-1] and bool(previous or not self._visible)
        previous += delta
        self._texts[item_id] = previous
        if appends:  # the common case: appending to the last message
            visible, self._visible = self._visible, ""
            visible += delta
            self._visible = visible
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
        self._extends_sent = False

    def _release(self, *, final: bool) -> str:
        self._apply_stop()
        if not self._streaming:
            return ""
        visible = self._visible
        if not self._extends_sent:
            if not visible.startswith(self.sent):
                if self.sent.startswith(visible) and not (final or self.stopped):
                    return ""  # a retry is re-sending what the client already has
                raise RetryDiverged("Codex retried the model request and the new text differs from what was streamed")
            self._extends_sent = True
        end = len(visible) if final or self.stopped else max(len(self.sent), len(visible) - self._hold)
        out = visible[len(self.sent) : end]
        sent, self.sent = self.sent, ""
        sent += out  # in place, as the texts above
        self.sent = sent
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
                    self._extends_sent = False
                    self.stopped = True
                    return
        self._scanned = len(text)


class Narration:
    """With a JSON schema asked for, the model's ``commentary`` messages (its narration before it
    runs a command, each one JSON of the schema too, since Codex constrains every model request of
    the turn) are not the answer: joined to it, the content would not parse. They are held back,
    and taken as the answer only when no message of another phase said anything (a model that
    calls every message commentary)."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}
        """The commentary messages' texts by item id (their deltas are not the answer's)."""
        self._answered = False

    def started(self, item: AgentMessageItem) -> None:
        if item.phase == "commentary":
            self.held.setdefault(item.id, "")

    def completed(self, item: AgentMessageItem) -> bool:
        """Whether ``item`` is commentary (held back, not the answer's)."""
        text = "" if item.withheld else item.text
        if item.id in self.held:
            self.held[item.id] = text
            return True
        self._answered = self._answered or bool(text)
        return False

    def unanswered(self) -> dict[str, str]:
        """The held messages' texts by item id, when no other message answered."""
        return {} if self._answered else self.held
