"""Reply audio out at real time, for every channel: frames sent at most `lead_s` ahead.

A channel cuts reply audio into the frames of its wire (the browser's binary frames, the
telephone's 20 ms) and queues them with their length; the playout's task sends each one
when the listener is no more than `lead_s` from hearing it. Only that much is ever in
flight, so a barge-in stops the reply where the listener is: `interrupt()` drops what is
queued and bumps a generation, and a frame the player was holding back when it happened
is dropped too, never sent late.

The player keeps a clock of when the next frame will be heard at the far end. It runs on
across replies; when nothing was playing (or audio came late) it starts again at now, so
a late frame is sent at once and no burst follows to "catch up".

A channel also tells its producer (the session) when to go on: `within(s)` waits until
the last frame queued is at most `s` from being heard, so speech is synthesised just ahead
of the listener. `mark()` queues a point that is reached once the frames before it are
sent (the end of a reply: Twilio's mark, the browser's audio_end).
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

FrameT = TypeVar("FrameT")


@dataclass(frozen=True)
class _Frame(Generic[FrameT]):
    data: FrameT
    seconds: float


@dataclass(frozen=True)
class _Mark:
    reached: Callable[[], Awaitable[None]] | None
    done: "asyncio.Future[bool]"


class Playout(Generic[FrameT]):
    """Frames of one listener's audio, sent by `send` at real time, `lead_s` ahead at most."""

    def __init__(self, send: Callable[[FrameT], Awaitable[None]], lead_s: float) -> None:
        self.lead_s = lead_s
        self._send = send
        self._queue: deque[_Frame[FrameT] | _Mark] = deque()
        self._frames = 0  # frames queued
        self._queued_s = 0.0  # their length
        self._last_s = 0.0  # the length of the last one
        self._clock: float | None = None  # when the next frame sent will be heard
        self._generation = 0  # +1 on each interrupt: a frame of an older one is dropped
        self._wake = asyncio.Event()
        self._player: asyncio.Task[None] | None = None
        self._closed = False  # closed, or a send failed: nothing more goes out

    @property
    def queued_s(self) -> float:
        """Seconds of audio queued and not sent yet."""
        return self._queued_s

    def queue(self, frame: FrameT, seconds: float) -> None:
        """Send `frame`, `seconds` of audio, after those queued before it."""
        if self._closed:
            return
        self._queue.append(_Frame(frame, seconds))
        self._frames += 1
        self._queued_s += seconds
        self._last_s = seconds
        self._run()

    def mark(self, reached: Callable[[], Awaitable[None]] | None = None) -> "asyncio.Future[bool]":
        """A point after the frames queued so far. Once they are sent, `reached` is awaited
        and the future is True; if an interrupt (or the end of the playout) drops them
        first, the future is False and `reached` is never called."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closed:
            done.set_result(False)
        else:
            self._queue.append(_Mark(reached, done))
            self._run()
        return done

    async def within(self, seconds: float) -> None:
        """Wait until the last frame queued will be heard at most `seconds` from now (at
        once when nothing is queued).

        An interrupt does not cut the wait short: it comes with a barge-in, which stops the
        producer too, and a producer woken early would synthesise speech nobody hears."""
        loop = asyncio.get_running_loop()
        generation = self._generation
        while generation == self._generation and self._frames and not self._closed:
            now = loop.time()
            start = now if self._clock is None else max(self._clock, now)
            wait = start + self._queued_s - self._last_s - now - seconds
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def interrupt(self) -> None:
        """Barge-in: drop everything queued (its marks are not reached)."""
        self._generation += 1
        for item in self._queue:
            if isinstance(item, _Mark) and not item.done.done():
                item.done.set_result(False)
        self._queue.clear()
        self._frames = 0
        self._queued_s = self._last_s = 0.0

    async def close(self) -> None:
        """Stop sending; what is queued is dropped."""
        self._closed = True
        self.interrupt()
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._player

    def _run(self) -> None:
        if self._player is None:
            self._player = asyncio.create_task(self._play())
        self._wake.set()

    async def _play(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._send_queued()
        finally:
            self._closed = True  # closed, or a send failed: the listener is gone
            self.interrupt()

    async def _send_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            item = self._queue[0]
            if isinstance(item, _Mark):
                self._queue.popleft()
                reached = False
                try:
                    if item.reached is not None:
                        await item.reached()
                    reached = True
                finally:
                    if not item.done.done():
                        item.done.set_result(reached)
                continue
            now = loop.time()
            if self._clock is None or self._clock < now:
                self._clock = now  # nothing was playing (or audio came late): start now
            if self._clock - now > self.lead_s:
                generation = self._generation
                await asyncio.sleep(self._clock - now - self.lead_s)
                if generation != self._generation:
                    continue  # barged in while waiting: that frame went with the queue
            self._queue.popleft()
            self._frames -= 1
            self._queued_s = self._queued_s - item.seconds if self._frames else 0.0
            self._clock += item.seconds
            await self._send(item.data)
