"""The /ws/voice wire format, for the browser widget and the microphone client.

Client to server: binary frames of PCM16LE mono at the pipeline's 16 kHz, up to one second
each (`decode_audio()`), and JSON text messages `password`, `text`, `end_of_speech` and
`ping` (`decode_message()`). Server to client: a session's events and `pong` as JSON text
messages (`encode()`), and the reply's speech as binary frames of PCM16 at the voice's
rate, `voice.audio_chunk_ms` long each (`audio_frames()`). docs/voice.md
documents it. Nothing here touches a socket (voice/routes.py does).
"""

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, assert_never

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from banking.api.deps import MAX_PASSWORD_CHARS
from dialogue.api.deps import MAX_MESSAGE_CHARS
from voice.audio import PIPELINE_RATE, AudioFormatError, pcm16_to_float
from voice.events import (
    AudioEnd,
    AudioStart,
    Error,
    NoSpeech,
    Ready,
    Reply,
    SpeechStart,
    Transcript,
)

AUDIO_FORMAT = "pcm_s16le"
MAX_AUDIO_FRAME_BYTES = 2 * PIPELINE_RATE  # one second of PCM16


class ProtocolError(ValueError):
    """A frame the client got wrong; the message says what, in words for the client."""


# Client to server.


class PasswordMessage(BaseModel):
    type: Literal["password"]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_CHARS)]


class TextMessage(BaseModel):
    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]


class EndOfSpeechMessage(BaseModel):
    type: Literal["end_of_speech"]


class PingMessage(BaseModel):
    type: Literal["ping"]


ClientMessage = PasswordMessage | TextMessage | EndOfSpeechMessage | PingMessage
CLIENT_MESSAGE: TypeAdapter[ClientMessage] = TypeAdapter(
    Annotated[ClientMessage, Field(discriminator="type")]
)


def decode_audio(frame: bytes) -> np.ndarray:
    """The samples of a binary frame (16 kHz); raises ProtocolError for one that is not."""
    if len(frame) > MAX_AUDIO_FRAME_BYTES:
        raise ProtocolError(
            f"Audio frames are limited to 1 second ({MAX_AUDIO_FRAME_BYTES} bytes)."
        )
    try:
        return pcm16_to_float(frame)
    except AudioFormatError:
        raise ProtocolError(
            "Audio frames are PCM signed 16-bit: an even number of bytes."
        ) from None


def decode_message(text: str, max_bytes: int) -> ClientMessage:
    """The message of a text frame; raises ProtocolError for one that is not."""
    if len(text.encode()) > max_bytes:
        raise ProtocolError(f"Text messages are limited to {max_bytes} bytes.")
    try:
        return CLIENT_MESSAGE.validate_json(text)
    except ValidationError as error:
        raise ProtocolError(_problem(error)) from None  # the input may hold a password


def _problem(error: ValidationError) -> str:
    """What is wrong with a text message, without repeating it (it may hold a password)."""
    first = error.errors(include_url=False, include_input=False)[0]
    if first["type"] in ("json_invalid", "model_attributes_type", "dict_type"):
        return "Text messages must be JSON objects; audio goes in binary frames."
    if first["type"].startswith("union_tag"):
        return 'Unknown or missing "type": use "password", "text", "end_of_speech" or "ping".'
    field = ".".join(str(part) for part in first["loc"][1:])
    return f'Bad "{field}" in a "{first["loc"][0]}" message: {first["msg"]}.'


# Server to client.


@dataclass(frozen=True)
class Pong:
    """The answer to a ping: the connection is alive."""


TextEvent = (
    Ready | SpeechStart | Transcript | NoSpeech | Reply | AudioStart | AudioEnd | Error | Pong
)


def encode(event: TextEvent) -> str:
    """The JSON text message of an event (every event but the reply's audio)."""
    return json.dumps(_message(event), ensure_ascii=False)


def _message(event: TextEvent) -> dict[str, Any]:
    match event:
        case Ready():
            return {
                "type": "ready",
                "sample_rate": event.sample_rate,
                "format": AUDIO_FORMAT,
                "session_id": event.session_id,
            }
        case SpeechStart():
            return {"type": "speech_start"}
        case Transcript():
            return {"type": "transcript", "text": event.text, "final": True}
        case NoSpeech():
            return {"type": "no_speech"}
        case Reply():
            return {
                "type": "reply",
                **event.reply.body(),
                "session_id": event.session_id,
                "timings": dict(event.timings),
            }
        case AudioStart():
            return {"type": "audio_start", "sample_rate": event.sample_rate, "format": AUDIO_FORMAT}
        case AudioEnd():
            return {"type": "audio_end", "interrupted": event.interrupted}
        case Error():
            return {"type": "error", "message": event.message}
        case Pong():
            return {"type": "pong"}
        case _:
            assert_never(event)


def audio_frames(pcm16: bytes, sample_rate: int, frame_ms: int) -> list[bytes]:
    """A piece of the reply's speech as binary frames of `frame_ms` (the last one shorter)."""
    frame_bytes = 2 * sample_rate * frame_ms // 1000
    return [pcm16[start : start + frame_bytes] for start in range(0, len(pcm16), frame_bytes)]


def frame_seconds(frame: bytes, sample_rate: int) -> float:
    """How long a binary frame of the reply's speech plays."""
    return len(frame) / 2 / sample_rate
