"""Server bytes that ``qqproto.testing.wire.FakeServer`` will not write.

FakeServer writes well-formed frames and the valid 101. The fuzzer also
needs the malformed ones: any opcode, RSV bits, a mask, a padded length,
fragments, arbitrary close codes and reasons, and upgrade answers that are
almost right. Server frames are unmasked, so they are simple to write here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    wide_length: bool = False,
) -> bytes:
    """One WebSocket frame, unmasked unless ``mask`` is given.

    ``wide_length`` writes the length in 64 bits even when it is small, which
    RFC 6455 forbids.
    """
    head = bytearray(((0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F),))
    n = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if wide_length or n >= 1 << 16:
        head += bytes((mask_bit | 127,)) + n.to_bytes(8, "big")
    elif n >= 126:
        head += bytes((mask_bit | 126,)) + n.to_bytes(2, "big")
    else:
        head.append(mask_bit | n)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return bytes(head) + payload


def close_frame(code: int | None, reason: bytes = b"") -> bytes:
    """A close frame with any code (``None``: an empty body) and any reason."""
    return frame(OP_CLOSE, b"" if code is None else code.to_bytes(2, "big") + reason)


#: A header value standing for the right Sec-WebSocket-Accept.
ACCEPT: Final = b"\x00accept\x00"


@dataclass(frozen=True)
class Response:
    """An HTTP answer to the upgrade request, valid or not."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""
    version: bytes = b"HTTP/1.1"

    def render(self, accept: bytes) -> bytes:
        """The bytes, with ``accept`` (the right key) in place of :data:`ACCEPT`."""
        lines = [b"%s %d Whatever" % (self.version, self.status)]
        lines += [name + b": " + (accept if v == ACCEPT else v) for name, v in self.headers]
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body
