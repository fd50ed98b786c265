"""A QQ gateway and a QQ REST server on loopback, for the drivers' end-to-end tests.

The gateway is written with the ``websockets`` library (its asyncio server),
not wsproto, so our WebSocket code is checked by someone else's. The REST
side (token, ``/gateway/bot``, message sends) is a small asyncio server on
h11's server role. Both run in the test's event loop; the threaded driver's
tests run them in a loop of their own (:class:`LoopThread`). Peers that
misbehave on purpose are in :mod:`.e2e_faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import h11
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

T = TypeVar("T")
WAIT = 10.0  # generous: a deadline for things that take milliseconds
BOT_ID = "6158788878435714165"
MEMBER = "0BA1C3D5E7F90B1D3F5A7C9E1B3D7F13"
GROUP = "82B3C5D7E9FA1B3C5D7E9F0A1B2C6064"


def group_message(n: int, content: str | None = None, member: str = MEMBER) -> dict[str, Any]:
    return {
        "id": f"ROBOT1.0_msg-{n}",
        "content": f" hello {n}" if content is None else content,
        "timestamp": "2026-03-25T15:03:20+08:00",
        "author": {"id": member, "member_openid": member},
        "group_openid": GROUP,
    }


class FakeGateway:
    """The QQ gateway: Hello, Identify/Resume, READY/RESUMED, ACKs, dispatches, closes."""

    def __init__(self, heartbeat_ms: int = 100) -> None:
        self.heartbeat_ms = heartbeat_ms
        self.seq = 0
        self.session = 0
        self.history: list[dict[str, Any]] = []  # every dispatch sent, for Resume
        self.lose_acks = 0  # heartbeats left unanswered from now on
        self.received: list[dict[str, Any]] = []
        self.closes: list[int | None] = []  # close codes the client sent
        self.connections: list[ServerConnection] = []
        self.accept_resume = True
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> FakeGateway:
        self._server = await serve(self._handler, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/websocket"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def current(self) -> ServerConnection:
        return self.connections[-1]

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        await ws.send(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_ms}}))
        try:
            async for message in ws:
                payload = json.loads(message)
                await self._note(payload)
                await self._answer(ws, payload)
        except ConnectionClosed:
            pass
        finally:
            await self._note(None, ws.close_code)

    async def _answer(self, ws: ServerConnection, payload: dict[str, Any]) -> None:
        op, d = payload.get("op"), payload.get("d")
        if op == 1:
            if self.lose_acks:
                self.lose_acks -= 1
            else:
                await ws.send(json.dumps({"op": 11}))
        elif op == 2:
            self.session += 1
            self.history.clear()
            ready = {"version": 1, "session_id": f"sess-{self.session}", "shard": [0, 1]}
            ready["user"] = {"id": BOT_ID, "username": "bot", "bot": True}
            await self._dispatch(ws, "READY", ready)
        elif op == 6:
            if not self.accept_resume:
                await ws.send(json.dumps({"op": 9, "d": False}))
                return
            assert isinstance(d, dict)
            for old in [p for p in self.history if p["s"] > d["seq"]]:
                await ws.send(json.dumps(old))
            await self._dispatch(ws, "RESUMED", "")

    async def _dispatch(self, ws: ServerConnection, t: str, d: Any) -> None:
        self.seq += 1
        payload = {"op": 0, "s": self.seq, "t": t, "id": f"{t}:{self.seq}", "d": d}
        self.history.append(payload)
        await ws.send(json.dumps(payload))

    async def _note(self, payload: dict[str, Any] | None, close_code: int | None = None) -> None:
        async with self._changed:
            if payload is None:
                self.closes.append(close_code)
            else:
                self.received.append(payload)
            self._changed.notify_all()

    # -- scripting ----------------------------------------------------------------

    async def dispatch(self, t: str, d: Any) -> None:
        await self._dispatch(self.current, t, d)

    async def message(self, n: int, **kwargs: Any) -> None:
        await self.dispatch("GROUP_AT_MESSAGE_CREATE", group_message(n, **kwargs))

    async def send_raw(self, payload: dict[str, Any] | str | bytes) -> None:
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        await self.current.send(data)

    async def close(self, code: int, reason: str = "") -> None:
        await self.current.close(code, reason)

    def drop(self) -> None:
        """The TCP connection dies: no close frame."""
        self.current.transport.abort()

    async def wait_for(
        self, predicate: Callable[[FakeGateway], bool], timeout: float = WAIT
    ) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    def ops(self, op: int) -> list[dict[str, Any]]:
        return [p for p in self.received if p.get("op") == op]


class FakeRest:
    """Token, ``/gateway/bot`` and message sends on h11's server role, keep-alive."""

    def __init__(self, gateway_url: str, secret: str = "s3cret") -> None:
        self.gateway_url = gateway_url
        self.secret = secret
        self.tokens = 0
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.sent: list[dict[str, Any]] = []
        self._server: asyncio.Server | None = None
        self.base_url = ""

    async def __aenter__(self) -> FakeRest:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def options(self) -> dict[str, Any]:
        return {"api_base": self.base_url, "token_url": f"{self.base_url}/app/getAppAccessToken"}

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                    continue
                if isinstance(event, h11.Request):
                    body = b""
                    while not isinstance(part := conn.next_event(), h11.EndOfMessage):
                        if part is h11.NEED_DATA:
                            conn.receive_data(await reader.read(65536))
                        elif isinstance(part, h11.Data):
                            body += part.data
                    status, answer = self._answer(event, body)
                    data = json.dumps(answer).encode()
                    headers = [
                        ("content-type", "application/json"),
                        ("content-length", str(len(data))),
                    ]
                    writer.write(
                        conn.send(h11.Response(status_code=status, headers=headers)) or b""
                    )
                    writer.write(conn.send(h11.Data(data=data)) or b"")
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                    await writer.drain()
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    break
        except (h11.ProtocolError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, request: h11.Request, body: bytes) -> tuple[int, Any]:
        method, target = request.method.decode(), request.target.decode()
        payload = json.loads(body) if body else None
        self.requests.append((method, target, payload))
        if target == "/app/getAppAccessToken":
            if payload is None or payload.get("clientSecret") != self.secret:
                return 200, {"code": 100016, "message": "invalid appid or secret"}
            self.tokens += 1
            return 200, {"access_token": f"tok-{self.tokens}", "expires_in": "7200"}
        if target == "/gateway/bot":
            limit = {"total": 1000, "remaining": 999, "reset_after": 1, "max_concurrency": 1}
            return 200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}
        if target.endswith("/messages") and payload is not None:
            self.sent.append(payload)
            return 200, {"id": f"out-{len(self.sent)}", "timestamp": 1774422200}
        return 404, {"code": 404, "message": "not found"}


class LoopThread:
    """An event loop in a thread of its own, for servers beside a threaded driver."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop")

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def cancel_the_rest() -> None:
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T] | Awaitable[T], timeout: float = WAIT) -> T:
        async def wrapped() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)
