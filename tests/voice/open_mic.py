"""A spoken conversation over /ws/voice with the microphone open the whole time.

`OpenMic` sends 100 ms frames at real time from its own thread: the words of each
utterance, and silence between them, while the assistant answers and while its reply
plays, as the browser widget does. `SpokenUser` answers whatever the assistant's last
reply waits for (a receiver, an amount, a yes, the password) in one voice; the ledger
judges the outcome.
"""

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dialogue.speech import spoken_amount
from tests.voice.spoken import cached_spoken_wav
from tests.voice.voice_client import FRAME_S, VoiceClient
from voice.audio import PIPELINE_RATE, read_wav, resample

FRAME = int(PIPELINE_RATE * FRAME_S)
PASSWORD = "password123"  # every demo user's (data/demo_users.yaml)
TURN_TIMEOUT_S = 40


class OpenMic:
    """Frames at real time, never a pause in the stream: queued speech, else silence."""

    def __init__(self, client: VoiceClient) -> None:
        self.client = client
        self._frames: deque[np.ndarray] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "OpenMic":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def say(self, samples: np.ndarray) -> float:
        """Queue the words; the moment (monotonic) their last frame will have been sent."""
        frames = [samples[i : i + FRAME] for i in range(0, len(samples), FRAME)]
        self._frames.extend(frames)
        return time.monotonic() + (len(self._frames) + 1) * FRAME_S

    def _run(self) -> None:
        silence = np.zeros(FRAME, dtype=np.float32)
        due = time.monotonic()
        while not self._stop.is_set():
            frame = self._frames.popleft() if self._frames else silence
            self.client.send_audio(frame)
            due += FRAME_S
            time.sleep(max(0.0, due - time.monotonic()))


def speech(text: str, voice: str, speed: int = 150, pitch: int = 50) -> np.ndarray:
    """`text` said by an espeak-ng or festival voice (tests/voice/spoken.py), at 16 kHz."""
    samples, rate = read_wav(cached_spoken_wav(text, voice, speed, pitch))
    return resample(samples, rate, PIPELINE_RATE)


@dataclass
class SpokenUser:
    """One person on the open microphone; answers what the assistant asks, by voice."""

    client: VoiceClient
    mic: OpenMic
    voice: str
    heard: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    misread: list[str] = field(default_factory=list)

    def say(self, text: str, wait_for_audio: bool = True) -> dict[str, Any] | None:
        """Speak `text`; the assistant's reply once its audio has played (None: no reply)."""
        self.mic.say(speech(text, self.voice))
        return self.reply(wait_for_audio)

    def type(self, text: str, wait_for_audio: bool = True) -> dict[str, Any] | None:
        """A typed message (the widget's text box), to set a conversation up quickly."""
        self.client.send({"type": "text", "text": text})
        return self.reply(wait_for_audio)

    def password(self) -> dict[str, Any] | None:
        self.client.send({"type": "password", "password": PASSWORD})
        return self.reply()

    def _misread(self, reply: dict[str, Any] | None, paise: int | None) -> bool:
        """Whether the read-back names an amount other than `paise`."""
        said = (reply or {}).get("reply", "")
        if paise is None or re.search(rf"(?<![\d,]){re.escape(spoken_amount(paise))}", said):
            return False
        self.misread.append(said)
        return True

    def reply(self, wait_for_audio: bool = True) -> dict[str, Any] | None:
        """The next reply, once its audio has played unless told not to wait for it."""
        deadline = time.monotonic() + TURN_TIMEOUT_S
        reply = None
        while (event := self.client.receive(deadline - time.monotonic())) is not None:
            if event["type"] == "transcript":
                self.heard.append(event["text"])
            elif event["type"] == "no_speech":
                self.heard.append("")
                return None
            elif event["type"] == "reply":
                reply = event
                self.replies.append(event["reply"])
                if not wait_for_audio:
                    return reply
            elif event["type"] == "audio_end" and reply is not None:
                return reply
        return reply

    def transfer(
        self,
        opening: str,
        receiver: str,
        amount: str,
        correction: str | None = None,
        turns: int = 9,
        paise: int | None = None,
    ) -> None:
        """Say `opening`, then answer each question: `receiver` to "who?", `amount` to "how
        much?", "yes" to a read-back, the password when asked (after saying `correction`
        once, if given); stop when nothing is awaited after a transfer was under way. An
        opening not understood is said again, as a person would. A read-back that names
        another amount than `paise` is corrected ("no, make it …") once, as a person
        listening would, and the slip kept in `misread`."""
        reply = self.say(opening)
        started = False
        for _ in range(turns):
            awaiting = (reply or {}).get("data", {}).get("awaiting")
            started = started or awaiting is not None
            if reply is not None and awaiting is None:
                if started:
                    return
                reply = self.say(opening)
            elif awaiting == "password" and correction:
                reply, correction = self.say(correction), None
            elif awaiting in ("password", "confirmation") and self._misread(reply, paise):
                reply, paise = self.say(f"no, make it {amount}"), None
            elif awaiting == "password":
                reply = self.password()
            elif awaiting == "amount":
                reply = self.say(amount)
            elif awaiting == "confirmation":
                reply = self.say("yes")
            elif awaiting == "receiver_confirmation":  # "Did you mean Ravi?"
                meant = receiver.removeprefix("to ").lower() in reply["reply"].lower()
                reply = self.say("yes" if meant else "no")
            else:  # who? (again), or nothing heard: say the name
                reply = self.say(receiver)
