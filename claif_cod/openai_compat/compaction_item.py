"""The ``compaction`` item ``responses.compact`` answers with, and what it stands for when it comes
back as input: a message of the conversation's history holding the summary.

OpenAI encrypts the item's content; claif_cod's is readable (base64 of JSON), since it has no
secret to keep from its own user, and marked so that another's item is told apart and refused.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Literal

import msgspec

from claif_cod.engine.errors import InvalidRequest

SUMMARY_HEADER = "The conversation before this point was compacted. Its summary:"
_PREFIX = "claif-cod-compaction-v1:"


class _Summary(msgspec.Struct):
    summary: str


class CompactionItem(msgspec.Struct, kw_only=True):
    id: str
    encrypted_content: str
    type: Literal["compaction"] = "compaction"


def compaction_item(summary: str) -> CompactionItem:
    packed = base64.urlsafe_b64encode(msgspec.json.encode(_Summary(summary))).decode()
    return CompactionItem(id=f"cmp_{os.urandom(16).hex()}", encrypted_content=_PREFIX + packed)


def summary_message(encrypted_content: object, where: str) -> str:
    """The history message a ``compaction`` input item stands for; only claif_cod's own items can be read."""
    if isinstance(encrypted_content, str) and encrypted_content.startswith(_PREFIX):
        try:
            packed = base64.urlsafe_b64decode(encrypted_content.removeprefix(_PREFIX))
            return f"{SUMMARY_HEADER}\n\n{msgspec.json.decode(packed, type=_Summary).summary}"
        except (binascii.Error, ValueError, msgspec.DecodeError):
            pass
    message = f"{where}: this compaction item was not made by claif_cod's responses.compact: its content cannot be read"
    raise InvalidRequest(message, param=f"{where}.encrypted_content")
