"""Twilio's side of a call, as Twilio's documentation describes it, for tests.

`TwilioPeer` posts the call webhook, reads the TwiML, opens the stream URL it names and
speaks the Media Streams messages: `connected`, `start` with the TwiML's parameters,
`media` every 20 ms (8 kHz μ-law: silence unless the caller is speaking, as a phone line
sends), `dtmf`, and `stop`. It plays what the server sends as a phone would: media is
queued and played at real time, a `mark` is echoed once the audio before it has played,
and `clear` drops the queued audio (and echoes the marks waiting behind it).
"""

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from voice.audio import PHONE_RATE as RATE
from voice.audio import mulaw_encode, read_wav, resample

FRAME_BYTES = 160  # 20 ms
FRAME_S = 0.02
SILENCE = mulaw_encode(np.zeros(FRAME_BYTES, dtype=np.float32))


@dataclass
class Received:
    """What came from the server, with the peer's clock (time.monotonic) of arrival."""

    media: list[tuple[float, bytes]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    closed_at: float | None = None


class TwilioPeer:
    def __init__(
        self,
        base_url: str,
        caller: str,
        headers: dict[str, str] | None = None,
        stir_verstat: str = "",
    ) -> None:
        """`stir_verstat`: the STIR/SHAKEN verdict Twilio adds to the webhook, if any."""
        self.base_url = base_url
        self.caller = caller
        self.headers = headers or {}
        self.stir_verstat = stir_verstat
        self.call_sid = "CA" + uuid.uuid4().hex
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.received = Received()
        self._lock = threading.Lock()  # sends come from several threads
        # frames the caller is saying, sent before silence; True marks the last with sound
        self._speech: list[tuple[bytes, bool]] = []
        self.words_ended_at = 0.0  # when the last frame with sound of the latest say() went
        self._playout_end = 0.0  # when the audio queued so far will have played
        self._chunk = 0
        self._stopped = threading.Event()
        self._marks_due: list[Callable[[], None]] = []

    # -- the call ------------------------------------------------------------------------

    def webhook(self) -> httpx.Response:
        form = {"CallSid": self.call_sid, "From": self.caller, "To": "+15550109999"}
        form |= {"AccountSid": "AC" + "0" * 32, "Direction": "inbound", "CallStatus": "ringing"}
        if self.stir_verstat:
            form["StirVerstat"] = self.stir_verstat
        url = f"{self.base_url}/telephony/twilio/voice"
        return httpx.post(url, data=form, headers=self.headers, timeout=10)

    def __enter__(self) -> "TwilioPeer":
        answer = self.webhook()
        answer.raise_for_status()
        stream = ElementTree.fromstring(answer.text).find("./Connect/Stream")
        assert stream is not None, answer.text
        parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        self.open(stream.get("url", ""), parameters)  # type: ignore[arg-type]  # names may be None
        return self

    def open(self, url: str, parameters: dict[str, str]) -> None:
        self.socket: ClientConnection = connect(url, open_timeout=10).__enter__()
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self._send(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": "AC" + "0" * 32,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": parameters,
                },
            }
        )
        self._threads = [
            threading.Thread(target=self._listen, daemon=True),
            threading.Thread(target=self._microphone, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def __exit__(self, *exc: Any) -> None:
        self.hang_up()

    def hang_up(self) -> None:
        """`stop`, then the socket closes, as when the caller hangs up."""
        if not self._stopped.is_set():
            self._send({"event": "stop", "streamSid": self.stream_sid, "stop": {}})
        self.drop()

    def drop(self) -> None:
        """The connection goes away without a word (a network failure)."""
        self._stopped.set()
        self.socket.close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- the caller ----------------------------------------------------------------------

    def say(self, wav: Path) -> float:
        """Speak the WAV into the line at real time; returns when its last frame was sent
        (the monotonic time then). Silence follows, as the line goes on.

        `words_ended_at` says when the last frame with sound was sent: on a busy machine
        the sender can stall and catch up, so the return time less the clip's trailing
        silence is not when the words ended."""
        samples, rate = read_wav(wav)
        samples = resample(samples, rate, RATE)
        audio = mulaw_encode(samples)
        audio += SILENCE[: -len(audio) % FRAME_BYTES]
        frames = [audio[i : i + FRAME_BYTES] for i in range(0, len(audio), FRAME_BYTES)]
        loud = np.flatnonzero(np.abs(samples) > 0.01)
        last_word = int(loud[-1]) // FRAME_BYTES if len(loud) else -1
        with self._lock:
            self._speech.extend((frame, i == last_word) for i, frame in enumerate(frames))
        while True:
            with self._lock:
                if not self._speech:
                    return time.monotonic()
            time.sleep(FRAME_S)

    def press(self, keys: str) -> None:
        for key in keys:
            self._send(
                {
                    "event": "dtmf",
                    "streamSid": self.stream_sid,
                    "dtmf": {"track": "inbound_track", "digit": key},
                }
            )
            time.sleep(0.1)

    def send_raw(self, message: str | bytes) -> None:
        with self._lock:
            self.socket.send(message)

    # -- what the server sends -----------------------------------------------------------

    def wait_mark(self, count: int, timeout: float = 60) -> str:
        """The name of the `count`-th mark the server sent, once it came."""
        self.wait(lambda: len(self.received.marks) >= count, timeout, f"mark {count}")
        return self.received.marks[count - 1][1]

    def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(0.05)

    def audio_between(self, start: float, end: float) -> bytes:
        return b"".join(data for at, data in self.received.media if start <= at < end)

    def reply_audio(self, mark: int) -> tuple[list[tuple[float, bytes]], float]:
        """The media frames of the reply that ended with the `mark`-th mark, and the time
        that mark came."""
        end = self.received.marks[mark - 1][0]
        start = self.received.marks[mark - 2][0] if mark > 1 else 0.0
        start = max([start, *[at for at in self.received.clears if at < end]])
        return [(at, data) for at, data in self.received.media if start < at <= end], end

    # -- inside --------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.socket.send(json.dumps(message))

    def _microphone(self) -> None:
        """A frame every 20 ms, on the clock: the caller's speech, or silence."""
        next_at = time.monotonic()
        while not self._stopped.is_set():
            with self._lock:
                frame, words_end = self._speech.pop(0) if self._speech else (SILENCE, False)
                self._chunk += 1
                message = {
                    "event": "media",
                    "sequenceNumber": str(self._chunk + 1),
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(self._chunk * 20),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
                try:
                    self.socket.send(json.dumps(message))
                except ConnectionClosed:
                    return
                if words_end:
                    self.words_ended_at = time.monotonic()
            next_at += FRAME_S
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _listen(self) -> None:
        while True:
            try:
                text = self.socket.recv()
            except ConnectionClosed:
                self.received.closed_at = time.monotonic()
                self._stopped.set()
                return
            now = time.monotonic()
            message = json.loads(text)
            event = message.get("event")
            if event == "media":
                self.received.media.append((now, base64.b64decode(message["media"]["payload"])))
                self._playout_end = max(self._playout_end, now) + FRAME_S
            elif event == "mark":
                self._echo_mark(message["mark"]["name"], self._playout_end - now)
                self.received.marks.append((now, message["mark"]["name"]))
            elif event == "clear":
                self.received.clears.append(now)
                self._playout_end = now
                for echo in self._marks_due:
                    echo()  # the audio before them is dropped: they are echoed now
                self._marks_due = []
            else:
                self.received.other.append(message)

    def _echo_mark(self, name: str, after_s: float) -> None:
        """Twilio sends a mark back when the audio queued before it has played."""
        message = {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
        echoed = threading.Event()

        def echo() -> None:
            if echoed.is_set():
                return
            echoed.set()
            if not self._stopped.is_set():
                with contextlib.suppress(ConnectionClosed):
                    self._send(message)

        timer = threading.Timer(max(0.0, after_s), echo)
        timer.daemon = True
        self._marks_due.append(echo)
        timer.start()
