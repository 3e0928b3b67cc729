"""Twilio Media Streams, the wire format: TwiML, signatures, stream tickets and messages.

Nothing here touches a socket (voice/twilio_routes.py does). A call goes:

1. Twilio POSTs the call webhook (form: From, To, CallSid, ...), signed with the
   account's auth token in X-Twilio-Signature (`signature()`).
2. The answer is TwiML that connects a bidirectional stream and hands it the caller's
   number and a `ticket`: an HMAC, by this server's secret, of the call SID and number,
   so that a stream is only believed about its caller when this server said so.
3. Twilio opens the WebSocket and sends JSON messages: `connected`, `start` (stream and
   call SIDs, media format, the custom parameters), `media` (base64 μ-law, 8 kHz, 20 ms),
   `dtmf`, `mark` (a mark of ours was played) and `stop`. The server sends `media`,
   `mark` and `clear` (`media_message()`, `mark_message()`, `clear_message()`).
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Annotated, Literal
from xml.etree import ElementTree

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from voice.audio import PHONE_RATE, mulaw_decode, mulaw_encode

MULAW = "audio/x-mulaw"
# StirVerstat of a call whose carrier attests (A) that the caller may use the number.
STIR_ATTESTED = "TN-Validation-Passed-A"
# Seconds a ticket is good for: Twilio opens the stream right after the webhook.
TICKET_TTL_S = 300
# One media message carries 20 ms (160 bytes); more than a second of it is refused.
MAX_MEDIA_BYTES = PHONE_RATE
# The longest stream message read: a media message of MAX_MEDIA_BYTES in base64 with its
# JSON; a larger one closes the stream (code 1009) unread.
MAX_MESSAGE_CHARS = 16384


class TwilioSettings(BaseModel):
    """Values come from config.yaml (twilio), which documents each key."""

    # An auth token of digits alone comes from YAML or the environment as a number.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    auth_token: str
    public_url: str
    start_timeout_s: float
    skip_pin_when_verified: bool


def signature(auth_token: str, url: str, form: Mapping[str, str] | list[tuple[str, str]]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1, keyed by the auth token, of the URL
    followed by each form field's name and value, sorted by name."""
    fields = form.items() if isinstance(form, Mapping) else form
    data = url + "".join(name + value for name, value in sorted(fields))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_by_twilio(
    auth_token: str, url: str, form: list[tuple[str, str]], header: str | None
) -> bool:
    return header is not None and hmac.compare_digest(signature(auth_token, url, form), header)


def ticket(
    secret: str, call_sid: str, caller: str, verified: bool = False, now: float | None = None
) -> str:
    """The server's word that call `call_sid` comes from `caller` (`verified`: and that the
    network vouched for the number), for TICKET_TTL_S."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_ticket_mac(secret, issued, call_sid, caller, verified)}"


def ticket_valid(
    secret: str,
    value: str,
    call_sid: str,
    caller: str,
    verified: bool = False,
    now: float | None = None,
) -> bool:
    issued_text, _, mac = value.partition(".")
    if not issued_text.isdigit():
        return False
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    expected = _ticket_mac(secret, issued, call_sid, caller, verified)
    return 0 <= age <= TICKET_TTL_S and hmac.compare_digest(mac, expected)


def _ticket_mac(secret: str, issued: int, call_sid: str, caller: str, verified: bool) -> str:
    message = f"twilio-stream\n{issued}\n{call_sid}\n{caller}\n{int(verified)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def connect_stream_twiml(stream_url: str, parameters: Mapping[str, str]) -> str:
    """<Response><Connect><Stream url=…> with a <Parameter> per entry (XML-escaped)."""
    response = ElementTree.Element("Response")
    stream = ElementTree.SubElement(
        ElementTree.SubElement(response, "Connect"), "Stream", url=stream_url
    )
    for name, value in parameters.items():
        ElementTree.SubElement(stream, "Parameter", name=name, value=value)
    return _document(response)


def say_and_hang_up_twiml(text: str) -> str:
    """Twilio's own voice says `text`, then the call ends."""
    response = ElementTree.Element("Response")
    ElementTree.SubElement(response, "Say").text = text
    ElementTree.SubElement(response, "Hangup")
    return _document(response)


def _document(root: ElementTree.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(root, "unicode")


# Messages from Twilio. Fields not used here are allowed and ignored.


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Connected(_Message):
    event: Literal["connected"]


class MediaFormat(_Message):
    encoding: str
    sampleRate: int
    channels: int


class StartDetails(_Message):
    streamSid: str
    callSid: str
    mediaFormat: MediaFormat
    customParameters: dict[str, str] = {}


class Start(_Message):
    event: Literal["start"]
    start: StartDetails


class MediaPayload(_Message):
    payload: str


class Media(_Message):
    event: Literal["media"]
    media: MediaPayload


class DtmfDetails(_Message):
    digit: str


class Dtmf(_Message):
    event: Literal["dtmf"]
    dtmf: DtmfDetails


class MarkDetails(_Message):
    name: str


class Mark(_Message):
    event: Literal["mark"]
    mark: MarkDetails


class Stop(_Message):
    event: Literal["stop"]


TwilioMessage = Connected | Start | Media | Dtmf | Mark | Stop
TWILIO_MESSAGE = TypeAdapter(Annotated[TwilioMessage, Field(discriminator="event")])


def is_phone_audio(media_format: MediaFormat) -> bool:
    """Whether the stream is what this bridge speaks: μ-law, 8 kHz, mono."""
    return (media_format.encoding, media_format.sampleRate, media_format.channels) == (
        MULAW,
        PHONE_RATE,
        1,
    )


def media_audio(media: Media) -> np.ndarray:
    """The caller's audio in a media message, float samples at 8 kHz; raises ValueError for
    bad base64 or too many bytes."""
    data = base64.b64decode(media.media.payload, validate=True)
    if len(data) > MAX_MEDIA_BYTES:
        raise ValueError(f"a media message carried {len(data)} bytes")
    return mulaw_decode(data)


# Messages to Twilio.


def media_message(stream_sid: str, samples: np.ndarray) -> str:
    """Reply audio (float samples at 8 kHz) as a media message, μ-law."""
    payload = base64.b64encode(mulaw_encode(samples)).decode()
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
