"""/ws/voice with tokens required (the default): who may speak for whom."""

import pytest
from websockets.exceptions import ConnectionClosed

from tests.voice.conftest import VoiceServer
from tests.voice.voice_client import VoiceClient


def refused(url: str) -> str:
    """The error message of a refused connection, after checking it closed with 1008."""
    with VoiceClient(url) as client:
        error = client.until("error")
        with pytest.raises(ConnectionClosed) as closed:
            client.socket.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    return error["message"]


def test_without_a_token_the_voice_channel_is_refused(secured_voice_server: VoiceServer) -> None:
    message = refused(secured_voice_server.socket_url(user_id=1))
    assert "token" in message.lower() or "log in" in message.lower()


def test_a_token_cannot_speak_for_another_user(secured_voice_server: VoiceServer) -> None:
    janes = secured_voice_server.token(2)
    refused(secured_voice_server.socket_url(user_id=1, token=janes))
    refused(secured_voice_server.socket_url(user_id=1, token=janes + "x"))  # tampered


def test_the_users_own_token_opens_their_conversation(secured_voice_server: VoiceServer) -> None:
    url = secured_voice_server.socket_url(user_id=2, token=secured_voice_server.token(2))
    with VoiceClient(url) as client:
        client.until("ready")
        client.send({"type": "text", "text": "check my balance"})
        reply = client.until("reply")
    assert reply["reply"] == "Your current account balance is 5,000 rupees."  # Jane's
