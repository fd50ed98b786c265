"""Pending calls: what was asked, under which key its answer will come, and until when.

A protocol object that asks a peer for something (a REST request over HTTP,
an echo-correlated action over a WebSocket) keeps each request in one
:class:`Calls` until it ends, and every call ends: with its answer, with a
typed error, or with a timeout from the clock the object is given.

A call lives through these stages, and :class:`Calls` keeps each one:

- **in flight**: an attempt went out under a ``key`` (the HTTP request id,
  the echo), maybe with a deadline; :meth:`Calls.answer` retires it when its
  answer comes, or keeps it for more frames of a streamed answer;
- **held**: waiting for something of the owner's (an access token), with no
  time of its own; :meth:`Calls.release` gives them back;
- **waiting to retry**: an attempt failed and may be repeated; the wait comes
  from a per-call :class:`~qqproto.backoff.Backoff`, and :meth:`Calls.due`
  gives the call back when it has passed.

Answers that fit no call (an unknown key, a second answer, an answer after
the timeout) raise :class:`StrayAnswer`, which says which of those it was, so
the owner can report it and carry on. :meth:`Calls.expired` ends calls whose
deadline passed with :class:`CallTimeout`, and :meth:`Calls.drop_all` ends
every call at once when the link they depend on goes.

Ids: :meth:`Calls.next_id` numbers both calls and whatever keys the owner
makes from them, from one counter, so no two are ever the same.
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from .backoff import Backoff
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = ["Call", "CallTimeout", "Calls", "StrayAnswer"]

T = TypeVar("T")

#: How many retired keys are remembered, to tell a late or second answer
#: from one to a key never used.
_REMEMBERED = 1024


class CallTimeout(RemoteProtocolError):
    """No answer came before the call's deadline: its outcome is unknown."""


class StrayAnswer(RemoteProtocolError):
    """An answer no pending call waits for. ``late`` when its call had ended."""

    def __init__(self, key: object, why: str, *, late: bool) -> None:
        self.key = key
        self.late = late
        super().__init__(why, expected="the key of a call in flight", received=key)


class Call(Generic[T]):
    """One call: ``what`` was asked, and how far it got."""

    __slots__ = (
        "attempts",
        "backoff",
        "deadline",
        "frames",
        "id",
        "key",
        "last_error",
        "retry_at",
        "what",
    )

    def __init__(self, call_id: int, what: T, backoff: Backoff) -> None:
        self.id = call_id
        self.what = what
        self.backoff = backoff
        self.attempts = 0  # attempts sent
        self.key: Hashable | None = None  # what the current attempt's answer carries
        self.deadline: float | None = None  # the current attempt's answer is due by then
        self.retry_at: float | None = None  # waiting to be tried again at this time
        self.frames = 0  # answers taken for the current attempt (a streamed answer)
        #: What the last failed attempt got: the outcome if no retry happens.
        self.last_error: ProtocolError | None = None

    def __repr__(self) -> str:
        return (
            f"Call(#{self.id}, {self.what!r}, attempts={self.attempts}, key={self.key!r}, "
            f"deadline={self.deadline}, retry_at={self.retry_at})"
        )


class Calls(Generic[T]):
    """Every pending call of one owner. ``max_attempts`` bounds the tries of
    a call, and ``backoff_base``/``backoff_cap`` the waits between them."""

    def __init__(
        self,
        rng: random.Random,
        *,
        max_attempts: int = 3,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> None:
        self._rng = rng
        self.max_attempts = max_attempts
        self._backoff = (backoff_base, backoff_cap)
        # Each call gets a Backoff of its own; this one only checks the settings now,
        # rather than at the first retry.
        Backoff(rng, base=backoff_base, cap=backoff_cap, max_attempts=max_attempts)
        self._ids = itertools.count(1)
        self._in_flight: dict[Hashable, Call[T]] = {}
        self._held: list[Call[T]] = []
        self._waiting: list[Call[T]] = []
        self._retired: OrderedDict[Hashable, str] = OrderedDict()

    # -- reading ---------------------------------------------------------------------

    def next_id(self) -> int:
        """A fresh id, for a call or for a key of the owner's."""
        return next(self._ids)

    def __len__(self) -> int:
        return len(self._in_flight) + len(self._held) + len(self._waiting)

    def __iter__(self) -> Iterator[Call[T]]:
        """Every pending call: in flight, held, then waiting to retry."""
        yield from self._in_flight.values()
        yield from self._held
        yield from self._waiting

    @property
    def in_flight(self) -> list[Hashable]:
        """The keys answers are awaited under."""
        return list(self._in_flight)

    def next_deadline(self) -> float | None:
        """The first time a retry is due or an answer is overdue, if any."""
        times = [c.retry_at for c in self._waiting if c.retry_at is not None]
        times += [c.deadline for c in self._in_flight.values() if c.deadline is not None]
        return min(times, default=None)

    # -- a call's life ----------------------------------------------------------------

    def new(self, what: T) -> Call[T]:
        """A call for ``what``, with a fresh id; pending once it is sent or held."""
        base, cap = self._backoff
        backoff = Backoff(self._rng, base=base, cap=cap, max_attempts=self.max_attempts)
        return Call(self.next_id(), what, backoff)

    def sent(self, call: Call[T], key: Hashable, *, deadline: float | None = None) -> None:
        """An attempt of ``call`` went out; its answer will carry ``key``."""
        if key in self._in_flight:  # the owner's bug: one answer could not tell them apart
            raise LocalProtocolError(
                "key already in flight", expected="a key no call in flight has", received=key
            )
        call.attempts += 1
        call.key, call.deadline, call.frames = key, deadline, 0
        self._in_flight[key] = call

    def answer(self, key: Hashable, *, final: bool = True) -> Call[T]:
        """The call an answer with ``key`` belongs to; ``final=False`` for a
        frame of a streamed answer, after which more may come."""
        call = self._in_flight.get(key)
        if call is None:
            ended = self._retired.get(key)
            if ended is not None:
                raise StrayAnswer(key, f"an answer to a call that {ended}", late=True)
            raise StrayAnswer(key, "an answer to no call", late=False)
        call.frames += 1
        if final:
            self._retire(call, "was answered already")
        return call

    def hold(self, call: Call[T]) -> None:
        """Keep ``call`` until :meth:`release` (it waits for something of the owner's)."""
        self._held.append(call)

    def release(self) -> list[Call[T]]:
        """The held calls, in the order they were held; none is kept."""
        held, self._held = self._held, []
        return held

    def retry_later(self, call: Call[T], error: ProtocolError, now: float) -> float | None:
        """Schedule another attempt of ``call`` after ``error``: the wait, or None
        when its attempts are spent (``error`` is then its outcome)."""
        call.last_error = error
        if call.attempts >= self.max_attempts:
            return None
        delay = call.backoff.next_delay()
        call.retry_at = now + delay
        self._waiting.append(call)
        return delay

    def due(self, now: float) -> list[Call[T]]:
        """The calls whose retry time has come, taken out of waiting."""
        ready = [c for c in self._waiting if c.retry_at is not None and now >= c.retry_at]
        for call in ready:
            self._waiting.remove(call)
            call.retry_at = None
        return ready

    def expired(self, now: float) -> list[tuple[Call[T], CallTimeout]]:
        """The calls in flight whose deadline has passed, ended, each with its timeout."""
        out = []
        for call in [c for c in self._in_flight.values() if c.deadline is not None]:
            assert call.deadline is not None
            if now >= call.deadline:
                self._retire(call, "timed out")
                why = f"no answer to call #{call.id} by its deadline: its outcome is unknown"
                out.append((call, CallTimeout(why, expected="an answer", received=call.key)))
        return out

    def take_unsent(self) -> list[Call[T]]:
        """Every call not in flight (held, or waiting to retry), taken out."""
        unsent = self._held + self._waiting
        self._held, self._waiting = [], []
        return unsent

    def drop_all(
        self, reason: str, *, only: Callable[[Call[T]], bool] | None = None
    ) -> list[Call[T]]:
        """End every pending call at once (or those ``only`` picks), because of
        ``reason`` (their link went, or the owner stopped): the owner fails
        each one returned with it, and a late answer to one says it too."""
        calls = [call for call in self if only is None or only(call)]
        for call in calls:
            if call.key is not None and self._in_flight.get(call.key) is call:
                self._retire(call, f"was ended ({reason})")
        self._held = [c for c in self._held if c not in calls]
        self._waiting = [c for c in self._waiting if c not in calls]
        return calls

    def _retire(self, call: Call[T], how: str) -> None:
        key = call.key
        del self._in_flight[key]
        self._retired[key] = how
        if len(self._retired) > _REMEMBERED:
            self._retired.popitem(last=False)

    def __repr__(self) -> str:
        return (
            f"Calls(in_flight={len(self._in_flight)}, held={len(self._held)}, "
            f"waiting={len(self._waiting)})"
        )
