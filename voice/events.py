"""What a voice session says, as typed events; each channel puts them on its own wire.

A `VoiceSession` emits these through its `VoiceOutput` and knows nothing of JSON, WebSocket
frames or telephone lines: the browser channel encodes them as the /ws/voice messages
(voice/browser_protocol.py), a phone call turns them into audio on the line and keypad
state (voice/phone.py).

A turn goes: `SpeechStart` (when it was spoken), `Transcript` or `NoSpeech`, then `Reply`
once the first piece of its speech is ready, then the speech: `AudioStart`, `AudioChunk`s,
`AudioEnd`. `Error` may come instead of any of them.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from dialogue import AssistantReply
from dialogue.conversation import Awaiting


@dataclass(frozen=True)
class Ready:
    """The session listens: it hears mono audio at `sample_rate` Hz."""

    session_id: str
    sample_rate: int


@dataclass(frozen=True)
class SpeechStart:
    """The user started speaking: a reply being played stops (barge-in)."""


@dataclass(frozen=True)
class Transcript:
    """The final words heard in an utterance; masked ("••••••") when they were the
    password said aloud."""

    text: str


@dataclass(frozen=True)
class NoSpeech:
    """What the VAD took for speech held no words (a cough, noise): no turn."""


@dataclass(frozen=True)
class Reply:
    """The assistant's answer to a turn, and what it waits for next (`awaiting`
    "password": the second factor that confirms a transfer, a PIN on the phone)."""

    reply: AssistantReply
    session_id: str
    timings: Mapping[str, int]  # stage -> milliseconds (endpoint_ms, stt_ms, ...)
    awaiting: Awaiting | None


@dataclass(frozen=True)
class AudioStart:
    """The reply's speech follows: PCM16 mono at `sample_rate` Hz (the TTS voice's)."""

    sample_rate: int


@dataclass(frozen=True)
class AudioChunk:
    """A piece of the reply's speech (a sentence or an opening), PCM16 little-endian.

    The channel paces it: sending returns once the channel holds at most
    `voice.playback_lead_ms` of speech not yet heard (see `VoiceOutput`)."""

    pcm16: bytes


@dataclass(frozen=True)
class AudioEnd:
    """The reply's speech is over: all of it (`interrupted` False), or cut off by the user
    (True: what is queued is dropped)."""

    interrupted: bool


@dataclass(frozen=True)
class Error:
    """A turn that failed or was refused (token ended, too many requests); the session
    goes on."""

    message: str


VoiceEvent = (
    Ready | SpeechStart | Transcript | NoSpeech | Reply | AudioStart | AudioChunk | AudioEnd | Error
)
