"""Answering a bare gateway's TokenWanted on a driver, as an application does."""

from __future__ import annotations

import time
from collections.abc import Callable

from qqproto.qq import GatewayProtocol, TokenWanted


def answering_tokens(
    gateway: GatewayProtocol,
    then: Callable[[object], None] | None = None,
    *,
    token: Callable[[], tuple[str, float]] = lambda: ("t", 60.0),
) -> Callable[[object], None]:
    """An ``on_event`` that answers ``TokenWanted`` at once with ``token()``
    (``(token, seconds it lives)``) and hands everything else to ``then``.

    It runs inside the driver (in its loop, or under its lock), where the
    object may be called: what that queues is carried out by the same loop.
    """

    def on_event(event: object) -> None:
        if isinstance(event, TokenWanted):
            value, life = token()
            now = time.monotonic()  # the drivers' clock (asyncio's loop.time() is it too)
            gateway.token_received(value, now + life, now)
        elif then is not None:
            then(event)

    return on_event
