"""The playout that paces reply audio for every channel, on the real event loop's clock."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from voice.playout import Playout

FRAME_S = 0.02
SLACK_S = 0.005  # the event loop may wake a timer this much early


class Listener:
    """The far end: notes when each frame arrives, on the loop's clock."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, Any]] = []

    async def send(self, frame: Any) -> None:
        self.frames.append((asyncio.get_running_loop().time(), frame))

    def ahead_s(self) -> list[float]:
        """How far ahead of the listener each frame was sent: the audio sent before it,
        less the time since the first one arrived."""
        first = self.frames[0][0]
        return [index * FRAME_S - (at - first) for index, (at, _) in enumerate(self.frames)]


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_frames_go_out_in_order_at_real_time_never_more_than_the_lead_ahead() -> None:
    listener = Listener()

    async def play() -> None:
        playout = Playout(listener.send, lead_s=0.1)
        for index in range(20):  # 0.4 s
            playout.queue(index, FRAME_S)
        assert await playout.mark() is True  # reached once every frame before it is sent
        await playout.close()

    run(play)
    assert [frame for _, frame in listener.frames] == list(range(20))
    assert max(listener.ahead_s()) <= 0.1 + SLACK_S
    # Not a burst: the last frame waited until the listener was within the lead of it.
    assert listener.frames[-1][0] - listener.frames[0][0] >= 19 * FRAME_S - 0.1 - SLACK_S


def test_an_interrupt_drops_what_is_queued_and_its_marks() -> None:
    listener = Listener()

    async def play() -> None:
        playout = Playout(listener.send, lead_s=0.05)
        for index in range(50):  # a 1 s reply
            playout.queue(("old", index), FRAME_S)
        old_reply_end = playout.mark()
        await asyncio.sleep(0.2)
        playout.interrupt()  # the caller talks over it
        sent_before = len(listener.frames)
        await asyncio.sleep(0.2)
        assert len(listener.frames) == sent_before  # nothing more of the old reply
        assert await old_reply_end is False
        playout.queue(("new", 0), FRAME_S)
        assert await playout.mark() is True
        await playout.close()

    run(play)
    old = [frame for _, frame in listener.frames if frame[0] == "old"]
    # At most the lead (and the frame in hand) was ahead of the listener when it stopped.
    assert len(old) * FRAME_S <= 0.2 + 0.05 + FRAME_S + SLACK_S
    assert listener.frames[-1][1] == ("new", 0)


def test_within_waits_until_the_last_frame_queued_is_that_close_to_being_heard() -> None:
    listener = Listener()

    async def play() -> float:
        playout = Playout(listener.send, lead_s=0.05)
        for index in range(25):  # 0.5 s
            playout.queue(index, FRAME_S)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await playout.within(0.2)
        waited = loop.time() - started
        await playout.close()
        return waited

    waited = asyncio.run(play())
    # The last frame starts 0.48 s after the first: it is 0.2 s away after about 0.28 s.
    assert waited >= 24 * FRAME_S - 0.2 - SLACK_S
    assert waited < 24 * FRAME_S  # it did not wait for the whole reply


def test_a_listener_gone_ends_the_playout_and_its_marks_are_not_reached() -> None:
    async def fail(frame: object) -> None:
        raise ConnectionResetError("the connection is closed")

    async def play() -> None:
        playout = Playout(fail, lead_s=0.05)
        playout.queue(0, FRAME_S)
        end = playout.mark()
        assert await asyncio.wait_for(end, timeout=1) is False
        playout.queue(1, FRAME_S)  # nobody to send it to: dropped
        await asyncio.wait_for(playout.within(0.0), timeout=1)
        assert await asyncio.wait_for(playout.mark(), timeout=1) is False
        await playout.close()

    run(play)
