"""The phone's keypad PIN as a transfer's second factor: asked for as such, checked like
the password, through the same lockout and events. The conversation turns are the ones a
phone call makes (Assistant.turn with factor="pin"); the lockout is then seen over HTTP."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dialogue import Assistant
from server import create_app
from tests.conftest import logged_in, settings_for

PIN = "1234"  # every demo user's (data/demo_users.yaml)
PASSWORD = "password123"


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(sqlite_url))) as test_client:
        yield logged_in(test_client, 1)


def phone_turn(assistant: Assistant, text: str, pin: str | None = None, call: str = "call-1"):
    return assistant.turn(1, text, pin, f"phone-{call}", channel="twilio", factor="pin")


def test_the_phone_asks_for_the_pin_and_a_right_one_moves_the_money(client: TestClient) -> None:
    assistant: Assistant = client.app.state.services.dialogue.assistant
    asked = phone_turn(assistant, "send 100 to ravi")
    assert asked.reply == (
        "Send 100 rupees to Ravi? Please type your PIN on the keypad, then press hash."
    )
    assert asked.data is not None and asked.data["awaiting"] == "password"
    assert "password" not in asked.reply.lower()
    done = phone_turn(assistant, "", PIN)
    assert done.reply.startswith("Successfully transferred 100 rupees to Ravi.")
    assert assistant.ledger.balance(1) == 1_000_000 - 100_00


def test_a_wrong_pin_is_refused_as_a_pin_and_recorded_like_a_wrong_password(
    client: TestClient,
) -> None:
    assistant: Assistant = client.app.state.services.dialogue.assistant
    phone_turn(assistant, "send 100 to ravi")
    refused = phone_turn(assistant, "", "9999")
    assert refused.reply == "Incorrect PIN. Transaction cancelled."
    phone_turn(assistant, "send 100 to ravi", call="call-2")
    password_as_pin = phone_turn(assistant, "", PASSWORD, call="call-2")
    assert password_as_pin.reply == "Incorrect PIN. Transaction cancelled."
    assert assistant.ledger.balance(1) == 1_000_000
    failed = assistant.ledger.events.for_user(1, "password.failed")
    assert [event.payload for event in failed] == [{"channel": "twilio", "factor": "pin"}] * 2


def test_wrong_pins_and_wrong_passwords_share_one_lockout(client: TestClient) -> None:
    assistant: Assistant = client.app.state.services.dialogue.assistant
    for attempt in range(3):
        phone_turn(assistant, "send 100 to ravi", call=f"call-{attempt}")
        assert phone_turn(assistant, "", "0000", call=f"call-{attempt}").reply.startswith(
            "Incorrect PIN"
        )
    over_http = {"user_id": 1, "message": "send 100 to ravi", "password": "wrong-one"}
    assert client.post("/assistant", json=over_http).json()["reply"].startswith("Incorrect")
    phone_turn(assistant, "send 100 to ravi", call="call-5")
    fifth = phone_turn(assistant, "", "0000", call="call-5").reply
    assert fifth == "Too many wrong PINs. Transfers are locked for 15 minutes. Nothing was sent."
    # Locked on every channel, even with the right PIN or password.
    on_phone = phone_turn(assistant, "send 100 to ravi", call="call-6")
    assert on_phone.reply.startswith("Too many wrong PINs.")
    right = {**over_http, "password": PASSWORD}
    assert client.post("/assistant", json=right).json()["reply"].startswith("Too many wrong")
    assert assistant.ledger.balance(1) == 1_000_000
    assert len(assistant.ledger.events.for_user(1, "account.locked")) == 1


@pytest.mark.parametrize("said", ["one two three four", "1234", "1, 2, 3, 4."])
def test_a_pin_said_aloud_cancels_the_transfer_and_is_never_repeated(
    client: TestClient, said: str
) -> None:
    assistant: Assistant = client.app.state.services.dialogue.assistant
    phone_turn(assistant, "send 100 to ravi")
    reply = phone_turn(assistant, said)
    assert reply.message_was_secret
    assert reply.reply == (
        "Please never say your PIN aloud: type it on the keypad. "
        "To be safe I cancelled the transfer. Nothing was sent."
    )
    assert PIN not in reply.reply
    assert phone_turn(assistant, "", PIN).reply == "There is no transfer waiting for your password."
    assert assistant.ledger.balance(1) == 1_000_000


def test_a_pin_said_aloud_gets_the_same_reply_whether_it_is_right_or_not(
    client: TestClient,
) -> None:
    """Saying numbers tells a caller nothing about the PIN: right or wrong, the same words,
    the transfer cancelled either way; nothing is compared, so nothing is counted."""
    assistant: Assistant = client.app.state.services.dialogue.assistant
    replies = []
    for call, said in enumerate(["one two three four", "nine eight seven six", "5555"]):
        phone_turn(assistant, "send 100 to ravi", call=f"call-{call}")
        replies.append(phone_turn(assistant, said, call=f"call-{call}"))
        after = phone_turn(assistant, "", PIN, call=f"call-{call}")
        assert after.reply == "There is no transfer waiting for your password."
    assert {reply.reply for reply in replies} == {replies[0].reply}
    assert all(reply.message_was_secret for reply in replies)
    assert assistant.ledger.balance(1) == 1_000_000
    assert not assistant.ledger.events.for_user(1, "password.failed")


def test_other_numbers_said_while_the_pin_is_awaited_still_change_the_amount(
    client: TestClient,
) -> None:
    assistant: Assistant = client.app.state.services.dialogue.assistant
    phone_turn(assistant, "send 100 to ravi")
    changed = phone_turn(assistant, "make it 2000")
    assert not changed.message_was_secret
    assert changed.reply.startswith("Send 2,000 rupees to Ravi?")
