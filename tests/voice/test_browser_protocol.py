"""The /ws/voice wire format: each event's JSON exactly as clients read it, and the
complaints about bad frames (the real socket is tests/voice/test_voice_socket.py)."""

import pytest

from dialogue import AssistantReply
from voice import browser_protocol as wire
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

BALANCE = AssistantReply(
    reply="Your current account balance is 10,000 rupees.",
    confidence=0.97,
    source="rules",
    page="home",
    data={"balance": 10000, "require_password": False, "awaiting": None},
)


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (
            Ready("voice-1a2b", 16000),
            '{"type": "ready", "sample_rate": 16000, "format": "pcm_s16le", '
            '"session_id": "voice-1a2b"}',
        ),
        (SpeechStart(), '{"type": "speech_start"}'),
        (
            Transcript("send ₹500 to Ravi"),
            '{"type": "transcript", "text": "send ₹500 to Ravi", "final": true}',
        ),
        (Transcript("••••••"), '{"type": "transcript", "text": "••••••", "final": true}'),
        (NoSpeech(), '{"type": "no_speech"}'),
        (
            Reply(BALANCE, "voice-1a2b", {"endpoint_ms": 480, "stt_ms": 120}, None),
            '{"type": "reply", "reply": "Your current account balance is 10,000 rupees.", '
            '"confidence": 0.97, "source": "rules", "page": "home", "data": {"balance": '
            '10000, "require_password": false, "awaiting": null}, "session_id": '
            '"voice-1a2b", "timings": {"endpoint_ms": 480, "stt_ms": 120}}',
        ),
        (
            Reply(
                AssistantReply(reply="Hello.", confidence=1.0, source="system"),
                "phone-9",
                {},
                None,
            ),
            '{"type": "reply", "reply": "Hello.", "confidence": 1.0, "source": "system", '
            '"page": null, "session_id": "phone-9", "timings": {}}',
        ),
        (
            AudioStart(22050),
            '{"type": "audio_start", "sample_rate": 22050, "format": "pcm_s16le"}',
        ),
        (AudioEnd(interrupted=False), '{"type": "audio_end", "interrupted": false}'),
        (AudioEnd(interrupted=True), '{"type": "audio_end", "interrupted": true}'),
        (Error("Too many requests."), '{"type": "error", "message": "Too many requests."}'),
        (wire.Pong(), '{"type": "pong"}'),
    ],
)
def test_each_event_is_the_json_clients_read(event: wire.TextEvent, text: str) -> None:
    assert wire.encode(event) == text


def test_reply_audio_goes_in_frames_of_the_chunk_length_the_last_one_shorter() -> None:
    piece = bytes(range(256)) * 80  # 20480 bytes: 0.46 s at 22050 Hz
    frames = wire.audio_frames(piece, 22050, 200)
    assert [len(frame) for frame in frames] == [8820, 8820, 2840]
    assert b"".join(frames) == piece
    assert wire.frame_seconds(frames[0], 22050) == pytest.approx(0.2)


def test_audio_frames_are_decoded_to_samples() -> None:
    samples = wire.decode_audio(b"\x00\x40" * 1600)  # 100 ms at 16 kHz
    assert samples.size == 1600 and samples[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("frame", "complaint"),
    [
        (b"\x01\x02\x03", "Audio frames are PCM signed 16-bit: an even number of bytes."),
        (bytes(32002), "Audio frames are limited to 1 second (32000 bytes)."),
    ],
)
def test_bad_audio_frames_are_refused_in_words(frame: bytes, complaint: str) -> None:
    with pytest.raises(wire.ProtocolError) as refused:
        wire.decode_audio(frame)
    assert str(refused.value) == complaint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type": "password", "password": "password123"}', wire.PasswordMessage),
        ('{"type": "text", "text": "check my balance"}', wire.TextMessage),
        ('{"type": "end_of_speech"}', wire.EndOfSpeechMessage),
        ('{"type": "ping"}', wire.PingMessage),
    ],
)
def test_client_messages_are_decoded(text: str, message: type) -> None:
    assert isinstance(wire.decode_message(text, 4096), message)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("check my balance", "Text messages must be JSON objects; audio goes in binary frames."),
        ("[1, 2]", "Text messages must be JSON objects; audio goes in binary frames."),
        (
            '{"type": "dance"}',
            'Unknown or missing "type": use "password", "text", "end_of_speech" or "ping".',
        ),
        ('{"type": "password"}', 'Bad "password" in a "password" message: Field required.'),
        ('{"type": "text", "text": "' + "x" * 90 + '"}', "Text messages are limited to 64 bytes."),
    ],
)
def test_bad_client_messages_are_refused_in_words(text: str, complaint: str) -> None:
    with pytest.raises(wire.ProtocolError) as refused:
        wire.decode_message(text, 64)
    assert str(refused.value) == complaint


def test_a_refused_password_message_does_not_repeat_the_password() -> None:
    secret = "hunter2-" + "x" * 200  # over the 128 characters a password may have
    with pytest.raises(wire.ProtocolError) as refused:
        wire.decode_message('{"type": "password", "password": "' + secret + '"}', 4096)
    assert "at most 128 characters" in str(refused.value)
    assert "hunter2" not in str(refused.value)
