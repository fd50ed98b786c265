"""The exceptions qqproto raises or reports.

Two roots, as in h11: :class:`LocalProtocolError` means *we* (the caller of
qqproto) asked for something the protocol does not allow; :class:`RemoteProtocolError`
means the *peer* sent something wrong. :class:`ConfigError` is raised before any
protocol runs, when a configuration value is out of range.

Every error says what was expected and what came instead, so a log line alone is
enough to see what went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "LocalProtocolError",
    "MessageTooBig",
    "NotSent",
    "ProtocolError",
    "ProtocolViolation",
    "RemoteProtocolError",
    "WebSocketHandshakeError",
]


def _describe(value: object, limit: int = 200) -> str:
    """A short, safe rendering of a received value for an error message."""
    try:
        text = repr(value)
    except (ValueError, RecursionError) as exc:
        # An int past sys.get_int_max_str_digits() (4300 digits) has no repr,
        # nor has a structure nested too deeply: the message must still be made.
        text = f"<{type(value).__name__} with no repr: {exc}>"
    if len(text) > limit:
        text = text[: limit - 15] + f"... ({len(text)} chars)"
    return text


class ProtocolError(Exception):
    """Base class of every protocol error.

    ``expected`` and ``received`` are kept as attributes so that code can react
    to them, and are folded into the message so that people can read them.
    """

    def __init__(self, message: str, *, expected: str | None = None, received: object = None):
        self.expected = expected
        self.received = received
        detail = message
        if expected is not None:
            detail += f": expected {expected}, got {_describe(received)}"
        super().__init__(detail)


class LocalProtocolError(ProtocolError):
    """The caller used a protocol object in a way the protocol does not allow."""


class NotSent(ProtocolError):
    """A call that never went out: unlike one whose answer did not come, its
    outcome is known (nothing happened), so making it again is safe."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that breaks the protocol.

    Protocol objects never raise this from ``receive_data``: they report it as
    an event and go on where the protocol lets them.
    """


class MessageTooBig(RemoteProtocolError):
    """The peer sent a WebSocket message larger than the configured limit."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(
            "WebSocket message over the size limit",
            expected=f"at most {limit} bytes",
            received=f"{size} bytes or more",
        )


class WebSocketHandshakeError(RemoteProtocolError):
    """The server answered the WebSocket upgrade with something other than 101."""

    def __init__(self, status: int, body: bytes, reason: str = ""):
        self.status = status
        self.body = body
        self.reason = reason
        shown = body[:200].decode("utf-8", "replace")
        super().__init__(
            f"WebSocket handshake rejected with HTTP {status} {reason}".rstrip()
            + (f" (body: {shown!r})" if shown else ""),
        )


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent."""

    def __init__(self, name: str, expected: str, received: object):
        self.name = name
        self.expected = expected
        self.received = received
        super().__init__(f"bad {name}: expected {expected}, got {_describe(received)}")


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """Delivered when the peer sent something wrong and the session went on
    (or resumed): the error, as a value the application reads among events."""

    error: RemoteProtocolError
