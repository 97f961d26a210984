"""``client.conversations`` and ``client.conversations.items``: OpenAI's Conversations API on a
:class:`~.conversations_store.ConversationStore`.

Items are checked as ``responses.create`` would check them as input (a conversation exists to be
run on), their ``data:`` images decoded and checked too (an image no response could take would fail
every response on the conversation), given an ``id`` and a ``status`` as OpenAI lists them, and kept
as sent. Every answer is
the JSON of OpenAI's own object, which ``openai`` parses into ``Conversation``,
``ConversationItemList``, ``ConversationItem`` or ``ConversationDeletedResource``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any, Literal

import msgspec

from claif_cod.engine.errors import InvalidRequest, ReadingBody
from claif_cod.openai_compat.conversations_store import (
    ConversationRecord,
    ConversationStore,
    MemoryConversationStore,
    StoredItem,
)
from claif_cod.openai_compat.errors import APIFailure, translate
from claif_cod.openai_compat.images import ImageRef, load_images
from claif_cod.openai_compat.ranges import check_metadata
from claif_cod.openai_compat.responses_input import check_items
from claif_cod.openai_compat.responses_items import ResponseItemList, listed_items, page_of
from claif_cod.openai_compat.responses_store import ResponseStoreFailed

MAX_ITEMS_PER_REQUEST = 20
"""OpenAI's limit on the items one ``create`` or ``items.create`` adds."""


class _CreateBody(msgspec.Struct, forbid_unknown_fields=True):
    items: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    safety_identifier: str | None = None
    """Accepted: it never changes an answer (as for ``responses.create``)."""


class _UpdateBody(msgspec.Struct, forbid_unknown_fields=True):
    metadata: dict[str, str] | None
    """Required, as OpenAI's; ``null`` clears it."""


class _ItemsBody(msgspec.Struct, forbid_unknown_fields=True):
    items: list[dict[str, Any]]


class ConversationObject(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    metadata: msgspec.Raw
    object: Literal["conversation"] = "conversation"


class ConversationDeleted(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


_encoder = msgspec.json.Encoder()
_item_decoder = msgspec.json.Decoder(dict[str, Any])


class ConversationsService:
    def __init__(self, store: ConversationStore | None = None) -> None:
        self.store: ConversationStore = store or MemoryConversationStore()
        self._running: set[str] = set()
        """Conversations a response is running on (:meth:`claim`)."""

    # --- conversations ---------------------------------------------------------------------------

    async def create(self, body: bytes) -> bytes:
        request = _decoded(body, _CreateBody)
        metadata = _metadata(request.metadata or {})
        sent = request.items or []
        await _check_images(_checked(sent, taken=frozenset()))
        items = _listed(sent)
        record = ConversationRecord(f"conv_{os.urandom(24).hex()}", int(time.time()), metadata)
        with _store_failures():
            self.store.create(record, items)
        return _encoder.encode(_object(record))

    def retrieve(self, conversation_id: str) -> bytes:
        return _encoder.encode(_object(self._record(conversation_id)))

    def update(self, conversation_id: str, body: bytes) -> bytes:
        self._record(conversation_id)
        metadata = _metadata(_decoded(body, _UpdateBody).metadata or {})
        with _store_failures():
            self.store.set_metadata(conversation_id, metadata)
        return self.retrieve(conversation_id)

    def delete(self, conversation_id: str) -> bytes:
        self._record(conversation_id)
        with _store_failures():
            self.store.delete(conversation_id)
        return _encoder.encode(ConversationDeleted(id=conversation_id))

    # --- items -----------------------------------------------------------------------------------

    async def add_items(self, conversation_id: str, body: bytes) -> bytes:
        self._record(conversation_id)
        sent = _decoded(body, _ItemsBody).items
        await _check_images(_checked(sent, taken=self._taken(conversation_id)))
        self._record(conversation_id)  # again: it may have been deleted, or given items, meanwhile
        _check_ids(sent, taken=self._taken(conversation_id))
        items = _listed(sent)
        with _store_failures():
            self.store.append(conversation_id, items)
        return _encoder.encode(  # the items added, as OpenAI's ConversationItemList
            ResponseItemList(
                data=[msgspec.Raw(item.body) for item in items],
                first_id=items[0].item_id if items else None,
                last_id=items[-1].item_id if items else None,
                has_more=False,
            )
        )

    def list_items(self, conversation_id: str, *, after: str | None, limit: int | None, order: str | None) -> bytes:
        self._record(conversation_id)
        try:
            return page_of(self.store.items(conversation_id), after=after, limit=limit, order=order)
        except InvalidRequest as exc:
            raise translate(exc) from exc

    def retrieve_item(self, conversation_id: str, item_id: str) -> bytes:
        self._record(conversation_id)
        found = next((item for item in self.store.items(conversation_id) if item.item_id == item_id), None)
        if found is None:
            raise _item_not_found(item_id)
        return found.body

    def delete_item(self, conversation_id: str, item_id: str) -> bytes:
        """OpenAI answers with the conversation the item was taken from."""
        self._record(conversation_id)
        with _store_failures():
            deleted = self.store.delete_item(conversation_id, item_id)
        if not deleted:
            raise _item_not_found(item_id)
        return self.retrieve(conversation_id)

    # --- for responses.create(conversation=...) ---------------------------------------------------

    def items_of(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's items, oldest first, as input items (a 404 naming ``conversation``
        when there is no such conversation)."""
        self._record(conversation_id, param="conversation")
        return [_item_decoder.decode(item.body) for item in self.store.items(conversation_id)]

    def claim(self, conversation_id: str) -> None:
        """One response at a time on a conversation, as OpenAI's (a second one is a 400,
        ``conversation_locked``): each runs on the items the one before it added. Released by
        :meth:`release` once the response has ended, however it ended."""
        if conversation_id in self._running:
            message = f"Another response is running on conversation '{conversation_id}'; retry once it has ended."
            raise APIFailure.bad_request(message, param="conversation", code="conversation_locked")
        self._running.add(conversation_id)

    def release(self, conversation_id: str) -> None:
        self._running.discard(conversation_id)

    def append(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        """A response's input and output, once it completed (kept as given: they have their ids);
        nothing when the conversation was deleted meanwhile. Its turn has run, so the answer goes out
        whatever the store says: a write it refuses now it makes later (``deferrable``)."""
        if self.store.get(conversation_id) is not None:
            stored = [StoredItem(item["id"], _encoder.encode(item)) for item in items]
            self.store.append(conversation_id, stored, deferrable=True)

    def _taken(self, conversation_id: str) -> set[str]:
        return {item.item_id for item in self.store.items(conversation_id)}

    def _record(self, conversation_id: str, *, param: str | None = None) -> ConversationRecord:
        record = self.store.get(conversation_id)
        if record is None:
            message = f"Conversation with id '{conversation_id}' not found."
            raise APIFailure.not_found(message, param=param)
        return record


@contextlib.contextmanager
def _store_failures() -> Iterator[None]:
    """A write the store refused (nothing changed) as the 503 that says so."""
    try:
        yield
    except ResponseStoreFailed as exc:
        raise translate(exc) from exc


def _decoded(body: bytes, kind: type[Any]) -> Any:
    try:
        with ReadingBody(body):
            return msgspec.json.decode(body or b"{}", type=kind)
    except InvalidRequest as exc:
        raise translate(exc) from None


def _metadata(metadata: dict[str, str]) -> bytes:
    try:
        check_metadata(metadata)
    except InvalidRequest as exc:
        raise translate(exc) from None
    return _encoder.encode(metadata)


def _listed(items: list[dict[str, Any]]) -> list[StoredItem]:
    return [StoredItem(item["id"], _encoder.encode(item)) for item in listed_items(items)]


async def _check_images(refs: list[ImageRef]) -> None:
    """Raises unless each ``data:`` image can be read and each URL is one a response could fetch, as
    ``responses.create`` checks its input's: a conversation holding such an image would fail every
    response on it.  An http(s) image is not fetched here: a response fetches it when it runs."""
    try:
        await load_images([ref for ref in refs if not ref.url.startswith(("https://", "http://"))])
    except InvalidRequest as exc:
        raise translate(exc) from exc


def _checked(items: list[dict[str, Any]], *, taken: AbstractSet[str]) -> list[ImageRef]:
    """The image parts of ``items``, once checked (their ids by :func:`_check_ids`)."""
    _check_ids(items, taken=taken)
    if not items:
        return []
    try:
        return check_items(items, "items")
    except InvalidRequest as exc:
        raise translate(exc) from exc


def _check_ids(items: list[dict[str, Any]], *, taken: AbstractSet[str]) -> None:
    """At most :data:`MAX_ITEMS_PER_REQUEST`; an id the caller gives must be a string, and new to the
    conversation (``taken``): an id names one item (``items.retrieve``, ``items.delete``, ``after``)."""
    if len(items) > MAX_ITEMS_PER_REQUEST:
        message = f"at most {MAX_ITEMS_PER_REQUEST} items can be added at a time (got {len(items)})"
        raise APIFailure.bad_request(message, param="items")
    ids = set(taken)
    for index, item in enumerate(items):
        given = item.get("id", "")
        if not isinstance(given, str):
            raise APIFailure.bad_request(f"items[{index}].id must be a string", param=f"items[{index}].id")
        if given and given in ids:
            message = f"items[{index}]: an item with id '{given}' is already in this conversation"
            raise APIFailure.bad_request(message, param=f"items[{index}].id")
        ids.add(given)


def _object(record: ConversationRecord) -> ConversationObject:
    return ConversationObject(
        id=record.conversation_id, created_at=record.created_at, metadata=msgspec.Raw(record.metadata)
    )


def _item_not_found(item_id: str) -> APIFailure:
    return APIFailure.not_found(f"Item with id '{item_id}' not found.", param="item_id")
