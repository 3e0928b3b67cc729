"""A transfer built up over several turns of one conversation, then confirmed once.

"I want to send money" → whom? → how much? → "Send 500 rupees to Ravi?" → password →
done (on the phone a PIN typed on the keypad stands for the password). Any slot can be
corrected at any step ("no, make it 300", "to mom instead"), the transfer can be
cancelled, and a question on another topic is answered by the assistant while the
transfer waits. The state kept between turns never holds the password.
"""

import re
import time
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from banking import (
    ContactEntry,
    Directory,
    Factor,
    InvalidAmount,
    Person,
    refusals,
    rupees_number,
    rupees_to_paise,
)
from banking.phones import is_pin
from banking.teller import Teller
from dialogue import reply as say
from dialogue.contacts import match_contact, name_in_answer, name_words, surely_a_contact
from dialogue.reply import AssistantReply
from nlu import NLUResult, negates, read_slots
from nlu.numbers import normalise_numbers

Awaiting = Literal["receiver", "receiver_confirmation", "amount", "confirmation", "password"]
# Source and confidence of a reply to an answer that only the conversation makes sense of
# ("500", "ravi"): the dialogue read it, knowing the question asked.
CONVERSATION = "dialogue"
CONVERSATION_CONFIDENCE = 1.0
# Intents that leave the transfer waiting while the assistant answers them.
TOPICS = ("check_balance", "transaction_history", "check_spending", "greet")
# What may come between the digits of a number read out: "1, 2, 3, 4."
DIGIT_SEPARATORS = re.compile(r"[\s,.-]")


class PendingTransfer(BaseModel):
    """What is known so far. `transfer_id` makes the ledger refuse a second execution."""

    transfer_id: str
    expires_at: float
    receiver: str | None = None
    suggested: str | None = None
    amount: int | None = None
    # The user said yes to the read-back of a large amount or an unusual transfer.
    large_amount_confirmed: bool = False
    # Why the transfer to `receiver` of `amount` looks unusual (empty: it does not), as
    # assessed for `assessed` ("receiver:amount"); assessed again when either changes.
    unusual: list[str] = []
    assessed: str | None = None


class ConversationState(BaseModel):
    pending: PendingTransfer | None = None
    last_reply: str | None = None


class TransferSettings(BaseModel):
    max_transfer_paise: int
    confirm_above_paise: int
    pending_ttl_s: float


def paise_or_none(rupees: Decimal) -> int | None:
    """The amount in paise; None when it has a fraction of a paisa."""
    try:
        return rupees_to_paise(rupees)
    except InvalidAmount:
        return None


def spoken_digits(text: str) -> str | None:
    """The digits of a transcript that is nothing but a PIN-long number ("one two three
    four", "1234"), or None."""
    digits = DIGIT_SEPARATORS.sub("", normalise_numbers(text))
    return digits if is_pin(digits) else None


def amount_refusal(paise: int | None, max_paise: int) -> str | None:
    """Why an amount (None: with a fraction of a paisa) cannot be sent; None if it can."""
    if paise is None:
        return refusals.AMOUNT_HAS_FRACTION_OF_PAISA
    if paise <= 0:
        return refusals.AMOUNT_NOT_POSITIVE
    if paise > max_paise:
        return refusals.amount_too_large(max_paise)
    return None


def _summary(receiver: str | None, amount: int | None, unusual: list[str]) -> dict[str, object]:
    """A transfer as `data.transfer` shows it (docs/voice.md)."""
    return {
        "to": receiver,
        "amount": None if amount is None else rupees_number(amount),
        "unusual": list(unusual),
    }


class Conversation:
    """One turn's view of the transfer being built; changes `state` in place."""

    def __init__(
        self,
        state: ConversationState,
        person: Person,
        *,
        directory: Directory,
        teller: Teller,
        settings: TransferSettings,
        channel: str,
        factor: Factor = "password",
        doubtful: bool = False,
    ) -> None:
        """`factor` is what confirms the transfer: the password, or the phone's keypad PIN;
        `doubtful`: the text may be misheard, so a name in it is asked about, not taken."""
        self.state = state
        self.person = person
        self.directory = directory
        self.teller = teller
        self.guard = teller.guard
        self.settings = settings
        self.channel = channel
        self.factor = factor
        self.doubtful = doubtful
        self.contacts = directory.contacts(person.id)

    def drop_if_expired(self) -> str | None:
        """Forget a transfer left unconfirmed too long; the sentence that says so."""
        pending = self.state.pending
        if pending is None or pending.expires_at > time.time():
            return None
        self.state.pending = None
        return say.EXPIRED

    def respond(
        self, text: str, meaning: NLUResult | None, password: str | None
    ) -> AssistantReply | None:
        """The reply when this turn is about a transfer; None when it is about something else.

        `meaning` is None when the NLU was not sure what the sentence means.
        """
        intent = meaning.intent if meaning else "unknown"
        pending = self.state.pending
        if intent == "send_money" and meaning is not None:
            if pending is None:
                pending = self.state.pending = self._new_pending()
            return self._fill(pending, text, meaning, password)
        if pending is None:
            return None
        if intent in TOPICS:
            return None
        if intent in ("cancel", "goodbye"):
            self.state.pending = None
            text_out = say.GOODBYE_CANCELLED if intent == "goodbye" else say.CANCELLED
            return self._reply(text_out, meaning, success=False)
        if intent == "help":
            return self._reply(say.help_during(self._question(pending)), meaning)
        return self._fill(pending, text, meaning, password)

    def answered_by(self, text: str, reading: NLUResult) -> bool:
        """Whether a bare "500" or "ravi" answers the pending transfer's question.

        Only a rules reading that found no intent counts: the rules stage is precise, so
        "show my last 5 transactions" is a question of its own, not the amount 5. The NLU
        stops there instead of asking slower stages, which may read such a fragment as
        some other intent.
        """
        pending = self.state.pending
        if pending is None or reading.source != "rules" or reading.intent != "unknown":
            return False
        waiting_for = self._awaiting(pending)
        if waiting_for == "amount" and read_slots(text)[0] is not None:
            return True
        name = name_in_answer(text, self.contacts)
        if waiting_for in ("receiver", "receiver_confirmation"):
            return name is not None and match_contact(name, self.contacts) is not None
        return surely_a_contact(name, self.contacts)

    def keep_alive(self) -> None:
        """The user is still there: the pending transfer waits another full period."""
        if self.state.pending is not None:
            self.state.pending.expires_at = time.time() + self.settings.pending_ttl_s

    def reminder(self) -> str | None:
        """The question the pending transfer waits on, to follow an answer on another topic."""
        pending = self.state.pending
        return None if pending is None else say.back_to_transfer(self._question(pending))

    def summary(self) -> dict[str, object] | None:
        """The transfer being built, for a screen: to whom, how much (rupees), and why it
        looks unusual; None when there is none."""
        pending = self.state.pending
        if pending is None:
            return None
        return _summary(
            self._label(pending.receiver) if pending.receiver else None,
            pending.amount,
            pending.unusual,
        )

    def awaiting(self) -> Awaiting | None:
        pending = self.state.pending
        return None if pending is None else self._awaiting(pending)

    def _new_pending(self) -> PendingTransfer:
        return PendingTransfer(
            transfer_id=str(uuid.uuid4()), expires_at=time.time() + self.settings.pending_ttl_s
        )

    def _fill(
        self,
        pending: PendingTransfer,
        text: str,
        meaning: NLUResult | None,
        password: str | None,
    ) -> AssistantReply:
        """Take what this turn says about the transfer, then go as far as it allows."""
        intent = meaning.intent if meaning else "unknown"
        waiting_for = self._awaiting(pending)
        if waiting_for == "password" and not password:
            secret = self._secret_in_message(text, meaning)
            if secret is not None:
                return secret
        if negates(text):
            password = None  # "don't send it", "no, make it 300": never a go-ahead
        amount, receiver = self._slots(text, meaning, waiting_for)
        if amount is None and receiver is None:
            refusing = intent in ("deny", "cancel") or negates(text)
            if refusing and waiting_for == "receiver_confirmation":
                pending.suggested = None
                return self._ask(pending, meaning)
            if refusing:
                self.state.pending = None
                return self._reply(say.CANCELLED, meaning, success=False)
            if intent == "affirm" and waiting_for == "receiver_confirmation":
                pending.receiver, pending.suggested = pending.suggested, None
            elif intent == "affirm" and waiting_for == "confirmation":
                pending.large_amount_confirmed = True
            elif waiting_for == "password" and password:
                pass  # "ok", "here you go" or nothing, with the password: go ahead
            elif intent == "affirm" and waiting_for == "password":
                return self._ask(pending, meaning)
            elif intent != "send_money":
                return self._ask(pending, meaning, prefix=say.NOT_CAUGHT)
        amount_refusal = None if amount is None else self._take_amount(pending, amount)
        if receiver is not None and not self._take_receiver(pending, receiver):
            # The documented reply to an unknown name, which lists the contacts to choose from.
            unknown = refusals.unknown_recipient(receiver, self.contacts)
            return self._reply(" ".join(filter(None, (amount_refusal, unknown))), meaning)
        if amount_refusal:
            return self._ask(pending, meaning, prefix=f"{amount_refusal} ")
        return self._advance(pending, meaning, password)

    def _secret_in_message(self, text: str, meaning: NLUResult | None) -> AssistantReply | None:
        """The reply when the message itself may be the password or PIN; else None.

        On the phone a PIN-long number said aloud is taken for the PIN and never compared:
        the caller hears the same words whether it was the PIN or not, so saying numbers
        tells nothing. A single word that reads as nothing else (no intent, amount or
        contact) while the password is awaited is a password attempt, checked as the
        password field's is: under the lockout (counted, lock checked, `password.failed`),
        and the transfer is dropped whatever the verdict. Either way the message is
        flagged secret, so it is never shown or kept.
        """
        if self.factor == "pin":
            if spoken_digits(text) is None:
                return None
            said = say.PIN_IN_MESSAGE
        else:
            word = text.strip()
            if meaning is not None or len(word.split()) != 1:
                return None
            if self._slots(text, meaning, "password") != (None, None):
                return None
            verdict = self.teller.verify(self.person, word, "password", self.channel)
            lock_s = self.guard.settings.lock_s
            said = (
                say.PASSWORD_IN_MESSAGE
                if verdict == "right"
                else refusals.password_refused(verdict, lock_s)
            )
        self.state.pending = None
        reply = self._reply(said, meaning, success=False)
        reply.message_was_secret = True
        return reply

    def _slots(
        self, text: str, meaning: NLUResult | None, waiting_for: Awaiting
    ) -> tuple[Decimal | None, str | None]:
        """Amount (rupees) and receiver said in this turn, if any."""
        heard_amount, heard_receiver, _ = read_slots(text)
        heard_receiver = name_words(heard_receiver)
        if meaning is not None and meaning.intent == "send_money":
            heard_amount = meaning.amount if meaning.amount is not None else heard_amount
            heard_receiver = meaning.receiver or heard_receiver
        answering = meaning is None or meaning.intent not in ("send_money", "deny", "cancel")
        if answering and self.doubtful and waiting_for == "amount":
            heard_amount = None  # "One back.": maybe "one lakh", surely not 1 rupee
        if answering and heard_receiver is None:
            named = name_in_answer(text, self.contacts)
            if waiting_for in ("receiver", "receiver_confirmation") or surely_a_contact(
                named, self.contacts
            ):
                heard_receiver = named
        return heard_amount, heard_receiver

    def _take_receiver(self, pending: PendingTransfer, spoken: str) -> bool:
        """Whether the name is one of the contacts, or sounds near enough to ask about."""
        match = match_contact(spoken, self.contacts)
        if match is None:
            pending.receiver = pending.suggested = None
        elif match.sure and not self.doubtful:
            pending.receiver, pending.suggested = match.contact.alias, None
        else:
            pending.suggested = match.contact.alias
        return match is not None

    def _take_amount(self, pending: PendingTransfer, rupees: Decimal) -> str | None:
        amount = paise_or_none(rupees)
        refusal = amount_refusal(amount, self.settings.max_transfer_paise)
        if refusal is not None:
            pending.amount = None
            return refusal
        if amount != pending.amount:
            pending.amount, pending.large_amount_confirmed = amount, False
        return None

    def _advance(
        self, pending: PendingTransfer, meaning: NLUResult | None, password: str | None
    ) -> AssistantReply:
        self._assess(pending)
        if self._awaiting(pending) != "password":
            return self._ask(pending, meaning)
        if password:  # the teller checks the lock too, and audits the attempt
            return self._execute(pending, meaning, password)
        if self.guard.locked(self.person.id):
            self.state.pending = None
            text = refusals.password_refused("locked", self.guard.settings.lock_s, self.factor)
            return self._reply(text, meaning, success=False)
        return self._ask(pending, meaning)

    def _assess(self, pending: PendingTransfer) -> None:
        """Whether the transfer as it now stands looks unusual; a newly unusual one needs a
        (new) yes, even if the user said yes to it with another receiver or amount."""
        contact = self._contact(pending.receiver)
        if contact is None or pending.amount is None or pending.suggested:
            return
        key = f"{pending.receiver}:{pending.amount}"
        if pending.assessed == key:
            return
        pending.assessed = key
        pending.unusual = self.teller.unusual(self.person, contact, pending.amount)
        if pending.unusual:
            pending.large_amount_confirmed = False

    def _execute(
        self, pending: PendingTransfer, meaning: NLUResult | None, password: str
    ) -> AssistantReply:
        contact = self._contact(pending.receiver)
        assert contact is not None and pending.amount is not None
        outcome = self.teller.execute(
            self.person,
            contact,
            pending.amount,
            password,
            channel=self.channel,
            transfer_id=pending.transfer_id,
            factor=self.factor,
        )
        receipt = outcome.receipt
        if outcome.refusal == "insufficient_funds" and outcome.balance is not None:
            pending_amount, pending.amount = pending.amount, None
            text = say.insufficient_then_ask(outcome.balance, pending_amount, contact.label)
            return self._reply(text, meaning, success=False)
        self.state.pending = None
        if receipt is None:
            text = self.teller.refusal_text(outcome, pending.amount, self.factor)
            return self._reply(text, meaning, success=False)
        text = say.transferred(pending.amount, contact.label, receipt.sender_balance)
        reply = self._reply(text, meaning, success=True)
        reply.page = "transfer"
        assert reply.data is not None
        reply.data["balance"] = rupees_number(receipt.sender_balance)
        reply.data["transfer"] = _summary(contact.label, pending.amount, [])
        return reply

    def _awaiting(self, pending: PendingTransfer) -> Awaiting:
        if pending.suggested:
            return "receiver_confirmation"
        if pending.receiver is None:
            return "receiver"
        if pending.amount is None:
            return "amount"
        large = pending.amount > self.settings.confirm_above_paise
        if (large or pending.unusual) and not pending.large_amount_confirmed:
            return "confirmation"
        return "password"

    def _question(self, pending: PendingTransfer) -> str:
        waiting_for = self._awaiting(pending)
        if waiting_for == "receiver_confirmation":
            return say.did_you_mean(self._label(pending.suggested))
        if waiting_for == "receiver":
            return say.ask_recipient(pending.amount, self.contacts)
        receiver = self._label(pending.receiver)
        if waiting_for == "amount":
            return say.ask_amount(receiver)
        assert pending.amount is not None
        if waiting_for == "confirmation" and pending.unusual:
            return say.confirm_unusual(pending.amount, receiver, pending.unusual)
        if waiting_for == "confirmation":
            return say.confirm_large(pending.amount, receiver)
        return say.confirm_with_password(pending.amount, receiver, self.factor)

    def _ask(
        self, pending: PendingTransfer, meaning: NLUResult | None, prefix: str = ""
    ) -> AssistantReply:
        return self._reply(prefix + self._question(pending), meaning)

    def _reply(
        self, text: str, meaning: NLUResult | None, *, success: bool | None = None
    ) -> AssistantReply:
        data: dict[str, object] = {} if success is None else {"success": success}
        return AssistantReply(
            reply=text,
            confidence=meaning.confidence if meaning else CONVERSATION_CONFIDENCE,
            source=meaning.source if meaning else CONVERSATION,
            data=data,
        )

    def _contact(self, alias: str | None) -> ContactEntry | None:
        return next((contact for contact in self.contacts if contact.alias == alias), None)

    def _label(self, alias: str | None) -> str:
        contact = self._contact(alias)
        return contact.label if contact else str(alias)
