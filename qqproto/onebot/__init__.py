"""OneBot v11 and v12 (NapCat, Lagrange.OneBot, LLOneBot, SnowLuma), one model over both.

- :mod:`qqproto.onebot.segments`: message segments in one vocabulary, and the
  conversions to and from each version;
- :mod:`qqproto.onebot.cq`: CQ codes, the string form of a v11 message;
- :mod:`qqproto.onebot.events`: events of both versions in one model;
- :mod:`qqproto.onebot.frames`: from a frame's text to an event, fast;
- :mod:`qqproto.onebot.actions`: requests in either dialect, answers as values
  or typed errors;
- :mod:`qqproto.onebot.connection`: :class:`OneBotProtocol`, a forward
  WebSocket to an implementation (its configuration in
  :mod:`qqproto.onebot.config`, its lifecycle in
  :mod:`qqproto.onebot.lifecycle`, what its actions come to in
  :mod:`qqproto.onebot.results`, its send limit in
  :mod:`qqproto.onebot.pacing`);
- :mod:`qqproto.onebot.addressing` (is it for the bot?) and
  :mod:`qqproto.onebot.split` (long text in pieces): what a bot needs beside.
"""

from . import cq
from .actions import Action, ActionFailed, Answer, Chat, read_answer, reply_to, send_message
from .addressing import TriggerMode, to_me, triggers
from .config import OneBotConfig
from .connection import OneBotProtocol
from .events import (
    Event,
    MessageEvent,
    MetaEvent,
    NoticeEvent,
    RequestEvent,
    decode_event,
    event_version,
)
from .frames import LazyJson, event_from_json, read_frame
from .lifecycle import OneBotState
from .results import ActionResult, StreamFrame
from .segments import (
    Segment,
    plain_text,
    segment_from_v11,
    segment_from_v12,
    segment_to_v11,
    segment_to_v12,
    segments_from_json,
)
from .split import split_text

__all__ = [
    "Action",
    "ActionFailed",
    "ActionResult",
    "Answer",
    "Chat",
    "Event",
    "LazyJson",
    "MessageEvent",
    "MetaEvent",
    "NoticeEvent",
    "OneBotConfig",
    "OneBotProtocol",
    "OneBotState",
    "RequestEvent",
    "Segment",
    "StreamFrame",
    "TriggerMode",
    "cq",
    "decode_event",
    "event_from_json",
    "event_version",
    "plain_text",
    "read_answer",
    "read_frame",
    "reply_to",
    "segment_from_v11",
    "segment_from_v12",
    "segment_to_v11",
    "segment_to_v12",
    "segments_from_json",
    "send_message",
    "split_text",
    "to_me",
    "triggers",
]
