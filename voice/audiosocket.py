"""Asterisk AudioSocket framing: bytes to messages and back, no sockets.

Each message is a type byte, a 16-bit big-endian payload length, then the payload
(https://docs.asterisk.org/Configuration/Channel-Drivers/AudioSocket/):

    0x00 hangup   no payload: the call is over (closing the socket means the same)
    0x01 uuid     16 bytes: the call's id, the first message Asterisk sends
    0x03 dtmf     one ASCII character: a key pressed on the caller's keypad
    0x10 audio    signed linear 16-bit little-endian, 8 kHz mono (320 bytes = 20 ms)
    0xff error    an error code byte; Asterisk's are bit flags (ERROR_CODES)

`FrameDecoder` cuts a byte stream into messages as it arrives, whatever the TCP segment
boundaries. A message whose framing is intact but whose content is wrong (audio of odd
length, an unknown type, a DTMF payload that is not one key) is returned as `Malformed`:
the stream can go on and the caller decides. `encode()` and the helpers make messages;
`Audio.samples()` and `audio_of()` convert between the wire's audio and float samples.
"""

import struct
import uuid
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from voice.audio import PHONE_RATE, float_to_pcm16, pcm16_to_float

HEADER = struct.Struct(">BH")
MAX_PAYLOAD = 0xFFFF
FRAME_MS = 20
FRAME_BYTES = 2 * PHONE_RATE * FRAME_MS // 1000  # 320
DTMF_KEYS = frozenset("0123456789*#ABCD")
# Asterisk's error payload: one byte of bit flags.
ERROR_CODES = {0x01: "hangup of calling party", 0x02: "frame forwarding", 0x04: "memory"}


class Kind(IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10
    ERROR = 0xFF


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class CallId:
    id: uuid.UUID


@dataclass(frozen=True)
class Dtmf:
    key: str


@dataclass(frozen=True)
class Audio:
    pcm16: bytes  # signed 16-bit little-endian, 8 kHz mono

    def samples(self) -> np.ndarray:
        """The audio as float samples (8 kHz)."""
        return pcm16_to_float(self.pcm16)


@dataclass(frozen=True)
class Error:
    code: int

    def describe(self) -> str:
        flags = [name for bit, name in ERROR_CODES.items() if self.code & bit]
        return f"0x{self.code:02x}" + (f" ({', '.join(flags)})" if flags else "")


@dataclass(frozen=True)
class Malformed:
    """A message that was framed right but cannot be used; the stream is still in step."""

    kind: int
    problem: str


Message = Hangup | CallId | Dtmf | Audio | Error | Malformed


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"an AudioSocket payload is at most {MAX_PAYLOAD} bytes")
    return HEADER.pack(kind, len(payload)) + payload


def hangup() -> bytes:
    return encode(Kind.HANGUP)


def call_id(id: uuid.UUID) -> bytes:
    return encode(Kind.UUID, id.bytes)


def dtmf(key: str) -> bytes:
    return encode(Kind.DTMF, key.encode("ascii"))


def audio(pcm16: bytes) -> bytes:
    return encode(Kind.AUDIO, pcm16)


def audio_of(samples: np.ndarray) -> bytes:
    """An audio message of float samples at 8 kHz."""
    return audio(float_to_pcm16(samples))


def error(code: int) -> bytes:
    return encode(Kind.ERROR, bytes([code]))


def decode(kind: int, payload: bytes) -> Message:
    """The message of one frame's type byte and payload."""
    if kind == Kind.HANGUP:
        return Hangup()
    if kind == Kind.UUID:
        if len(payload) != 16:
            return Malformed(kind, f"a call id is 16 bytes, got {len(payload)}")
        return CallId(uuid.UUID(bytes=payload))
    if kind == Kind.DTMF:
        key = payload.decode("ascii", errors="replace")
        if key not in DTMF_KEYS:
            # Not repeated: keys typed are a PIN's digits.
            return Malformed(kind, f"a DTMF payload is one key, got {len(payload)} bytes")
        return Dtmf(key)
    if kind == Kind.AUDIO:
        if len(payload) % 2:
            return Malformed(kind, f"16-bit audio has an even byte count, got {len(payload)}")
        return Audio(payload)
    if kind == Kind.ERROR:
        return Error(payload[0] if payload else 0)
    return Malformed(kind, f"unknown message type 0x{kind:02x} ({len(payload)} bytes)")


class FrameDecoder:
    """Messages out of a byte stream fed in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            messages.append(decode(kind, bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return messages

    def pending(self) -> int:
        """Bytes of an unfinished message: when the stream ends, that message was cut off."""
        return len(self._buffer)
