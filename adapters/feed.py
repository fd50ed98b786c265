"""Events on the shared stream, and back: the fields of one stream entry.

A gateway process publishes each event a bot delivers; a worker, maybe on
another host, turns the entry back into the same typed event the gateway
made (or the same :class:`~qqproto.qq.Dispatch`), its shard and the bot's id
(which guild messages need for their ``text``) included. The entry holds:

- ``frame``: the dispatch as the gateway's op 0 envelope (``op``, ``s``,
  ``t``, ``id`` and ``d`` as it came), decoded again by
  :meth:`~qqproto.qq.decode.EventDecoder.decode_dispatch`;
- ``key``: what de-duplicates it, the message id (or the envelope id of an
  event that is no message): a message the platform sent twice has two
  entries and one key;
- ``shard`` (``i/n``), ``seq`` (the session's, for the gateway process: the
  seq it saves is the last one published) and ``bot_id``, when known.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from qqproto.errors import RemoteProtocolError
from qqproto.qq.decode import EventDecoder
from qqproto.qq.events import Dispatch, Event

__all__ = ["entry_of", "event_of", "key_of"]


class _Envelope(msgspec.Struct, frozen=True):
    d: msgspec.Raw = msgspec.Raw(b"null")


_envelope = msgspec.json.Decoder(_Envelope).decode


def key_of(event: Event | Dispatch) -> str:
    """What de-duplicates ``event``: its message id, else its envelope id."""
    if isinstance(event, Dispatch):
        data = event.data
        message = data.get("id") if isinstance(data, dict) else None
        return str(message or event.id or "")
    return str(getattr(event, "id", None) or event.event_id or "")


def entry_of(event: Event | Dispatch) -> dict[str, str]:
    """The stream entry of ``event``."""
    if isinstance(event, Dispatch):
        t, seq, envelope_id, shard = event.type, event.seq, event.id, event.on_shard
        d = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
        bot_id = None
    else:
        t, seq, envelope_id, shard = event.TYPE, event.event_seq, event.event_id, event.on_shard
        d = bytes(_envelope(event.frame).d).decode() if event.frame else "null"
        bot_id = getattr(event, "bot_id", None)
    head = json.dumps({"op": 0, "s": seq, "t": t, "id": envelope_id}, separators=(",", ":"))
    fields = {"frame": head[:-1] + ',"d":' + d + "}", "key": key_of(event)}
    if shard is not None:
        fields["shard"] = f"{shard[0]}/{shard[1]}"
    if type(seq) is int:
        fields["seq"] = str(seq)
    if bot_id:
        fields["bot_id"] = bot_id
    return fields


def event_of(fields: dict[str, str]) -> Event | Dispatch:
    """The event an entry holds; :class:`RemoteProtocolError` for one that holds none."""
    frame = fields.get("frame")
    if not frame:
        raise RemoteProtocolError(
            "a stream entry without a frame", expected="frame", received=fields
        )
    shard = _shard(fields.get("shard"))
    return EventDecoder(fields.get("bot_id") or None, shard).decode_dispatch(frame)


def _shard(text: Any) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    i, _, n = text.partition("/")
    return (int(i), int(n)) if i.isdigit() and n.isdigit() else None
