"""Assistant.turn(): one user utterance in, one reply out. Every channel calls this.

Without a session a turn is the documented stateless API: a transfer is two requests,
the second one carrying the password. With a session the turn is part of a conversation
(dialogue/conversation.py) whose state the session store keeps between turns.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from banking import Directory, Factor, Ledger, Person, refusals, rupees_number, rupees_to_paise
from banking.lockout import Verdict
from banking.logs import log_event
from banking.statements import Period, Statements, category_name, period_range
from banking.store import KeyValueStore, StoreUnavailable
from banking.teller import Teller
from dialogue import reply as say
from dialogue.contacts import find_contact
from dialogue.conversation import (
    Awaiting,
    Conversation,
    ConversationState,
    TransferSettings,
    amount_refusal,
    paise_or_none,
)
from dialogue.expectation import Expectation, expectation
from dialogue.reply import AssistantReply
from dialogue.speech import speakable
from nlu import NLUResult, Pipeline, between_own_accounts

log = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M"
# The period of a spending question that names none ("how much did I spend on groceries").
DEFAULT_SPENDING_PERIOD = "this_month"


@dataclass
class TurnRecord:
    """What a turn's listeners are told: where it came from, who decided, how long it took."""

    channel: str
    source: str  # the NLU stage that decided, or "system"
    confidence: float
    nlu_ms: float = 0.0  # time in the NLU cascade
    total_ms: float = 0.0


TurnListener = Callable[[TurnRecord], None]


class AssistantSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    max_transfer_rupees: int
    confirm_above_rupees: int
    pending_transfer_ttl_s: float
    history_default_count: int
    history_max_count: int
    history_items_spoken: int
    timezone: str


class Assistant:
    def __init__(
        self,
        nlu: Pipeline,
        ledger: Ledger,
        directory: Directory,
        settings: AssistantSettings,
        sessions: KeyValueStore,
        teller: Teller,
        statements: Statements | None = None,
    ) -> None:
        self.nlu = nlu
        self.ledger = ledger
        self.statements = statements or Statements(ledger.engine)
        self.directory = directory
        self.settings = settings
        self.sessions = sessions
        self.teller = teller
        self.guard = teller.guard
        self.listeners: list[TurnListener] = []
        self.zone = ZoneInfo(settings.timezone)
        self.transfer_settings = TransferSettings(
            max_transfer_paise=rupees_to_paise(settings.max_transfer_rupees),
            confirm_above_paise=rupees_to_paise(settings.confirm_above_rupees),
            pending_ttl_s=settings.pending_transfer_ttl_s,
        )

    def knows(self, user_id: int) -> bool:
        """Whether the user exists: channels ask before they open a conversation."""
        return self.directory.person(user_id) is not None

    def caller(self, number: str) -> Person | None:
        """The registered user whose telephone number is calling, or None."""
        user_id = self.directory.caller(number)
        return None if user_id is None else self.directory.person(user_id)

    def verify_caller(self, user_id: int, pin: str, channel: str) -> Verdict:
        """A caller's keypad PIN, checked under the lockout as a transfer's is (a wrong one
        counted and a `password.failed` event). Raises StoreUnavailable when the counters
        cannot be kept."""
        person = self.directory.person(user_id)
        if person is None:
            return "wrong"
        return self.teller.verify(person, pin, "pin", channel)

    def contact_names(self, user_id: int) -> list[str]:
        """The names a user may say for their contacts: speech recognition listens for them."""
        return [entry.label for entry in self.directory.contacts(user_id)]

    def expectation(self, user_id: int, awaiting: Awaiting | None) -> Expectation | None:
        """What can answer the question a conversation waits on (`awaiting`, as its last
        reply said): speech recognition checks a doubtful bare answer against it."""
        return expectation(awaiting, self.directory.contacts(user_id))

    def turn(
        self,
        user_id: int,
        text: str,
        password: str | None = None,
        session_id: str | None = None,
        *,
        channel: str = "assistant",
        transfer_id: str | None = None,
        factor: Factor = "password",
        doubtful: bool = False,
    ) -> AssistantReply:
        """Answer one utterance; `session_id` makes it a turn of that conversation.

        The password is only ever compared, never stored or repeated. An empty text with
        a password is a conversation's answer to "confirm with your password". `channel`
        names the channel in the audit trail and the logs. `transfer_id` is the id the
        ledger gives a transfer this stateless turn makes (derived from a client's
        Idempotency-Key, so that a retry after a crash moves no money again); a
        conversation's transfer has an id of its own. `factor` is what confirms a
        conversation's transfer: on the phone ("pin") the `password` is the keypad PIN, and
        the assistant asks for it so. `doubtful`: speech recognition is not sure the text
        is what was said (voice/answers.py), so a contact it names is asked about ("Did
        you mean Ravi?") before it is taken.
        """
        started = time.perf_counter()
        record = TurnRecord(channel=channel, source=say.SYSTEM, confidence=0.0)
        person = self.directory.person(user_id)
        if person is None:
            answer = say.user_not_found()
        else:
            try:
                if session_id is None:
                    answer = self._stateless(
                        person, text, password or None, channel, transfer_id, record
                    )
                else:
                    answer = self._converse(
                        person,
                        session_id,
                        text,
                        password or None,
                        channel,
                        record,
                        factor,
                        doubtful,
                    )
            except StoreUnavailable:  # sessions or password counters: nothing moved
                answer = say.store_unavailable()
        record.source, record.confidence = answer.source, answer.confidence
        record.total_ms = (time.perf_counter() - started) * 1000
        for listener in self.listeners:
            listener(record)
        log_event(
            log,
            "turn",
            user_id=user_id,
            channel=channel,
            conversation=session_id is not None,
            source=answer.source,
            confidence=answer.confidence,
            page=answer.page,
            nlu_ms=round(record.nlu_ms, 1),
            total_ms=round(record.total_ms, 1),
        )
        return answer

    def _parse(
        self,
        text: str,
        record: TurnRecord,
        enough: Callable[[NLUResult], bool] | None = None,
    ) -> NLUResult:
        """The cascade's reading, its time added to the turn's record."""
        started = time.perf_counter()
        try:
            return self.nlu.parse(text, enough)
        finally:
            record.nlu_ms += (time.perf_counter() - started) * 1000

    def _stateless(
        self,
        person: Person,
        text: str,
        password: str | None,
        channel: str,
        transfer_id: str | None,
        record: TurnRecord,
    ) -> AssistantReply:
        meaning = self._parse(text, record)
        if not self.nlu.is_sure(meaning, text):
            return say.not_understood(meaning.confidence, meaning.source)
        if meaning.intent == "report_problem":
            return say.report_problem(meaning.confidence, meaning.source)
        if meaning.intent == "send_money" and between_own_accounts(text):
            return say.own_accounts(meaning.confidence, meaning.source)
        if meaning.intent == "check_balance":
            return self._balance(person, meaning)
        if meaning.intent == "transaction_history":
            return self._history(person, meaning)
        if meaning.intent == "check_spending":
            return self._spending(person, meaning)
        if meaning.intent == "send_money":
            return self._send(person, meaning, password, channel, transfer_id)
        return say.dialogue_act(meaning.intent, meaning.confidence, meaning.source)

    def _converse(
        self,
        person: Person,
        session_id: str,
        text: str,
        password: str | None,
        channel: str,
        record: TurnRecord,
        factor: Factor,
        doubtful: bool = False,
    ) -> AssistantReply:
        """A turn of a conversation: the pending transfer first, then any other topic.

        Replies are said aloud on the voice channels, so amounts are put into words.
        """
        key = f"{person.id}:{session_id}"
        saved = self.sessions.load(key)
        state = (
            ConversationState() if saved is None else ConversationState.model_validate_json(saved)
        )
        conversation = Conversation(
            state,
            person,
            directory=self.directory,
            teller=self.teller,
            settings=self.transfer_settings,
            channel=channel,
            factor=factor,
            doubtful=doubtful,
        )
        expired = conversation.drop_if_expired()
        meaning = (
            self._parse(text, record, lambda reading: conversation.answered_by(text, reading))
            if text.strip()
            else None
        )
        sure = meaning if meaning and self.nlu.is_sure(meaning, text) else None
        if sure and sure.intent == "repeat":
            reply = say.repeat(state.last_reply, sure.confidence, sure.source)
        elif sure and sure.intent == "report_problem":
            reply = say.report_problem(sure.confidence, sure.source)
        elif sure and sure.intent == "send_money" and between_own_accounts(text):
            reply = say.own_accounts(sure.confidence, sure.source)
        else:
            reply = conversation.respond(text, sure, password) or self._other_topic(
                person, text, meaning, conversation
            )
        conversation.keep_alive()
        if expired:
            reply.reply = f"{expired} {reply.reply}"
        reply.reply = speakable(say.sentence(reply.reply))
        awaiting = conversation.awaiting()
        reply.data = {
            **(reply.data or {}),
            "require_password": awaiting == "password",
            "awaiting": awaiting,
        }
        pending = conversation.summary()
        if pending is not None:
            reply.data["transfer"] = pending
        state.last_reply = reply.reply
        self.sessions.save(key, state.model_dump_json())
        return reply

    def _other_topic(
        self,
        person: Person,
        text: str,
        meaning: NLUResult | None,
        conversation: Conversation,
    ) -> AssistantReply:
        """A question besides the transfer; a pending transfer is recalled after the answer."""
        if meaning is None and not text.strip():
            reply = say.nothing_to_confirm()
        elif meaning is None:
            reply = say.not_understood(0.0, say.SYSTEM)
        elif not self.nlu.is_sure(meaning, text):
            reply = say.not_understood(meaning.confidence, meaning.source)
        elif meaning.intent == "check_balance":
            reply = self._balance(person, meaning)
        elif meaning.intent == "transaction_history":
            reply = self._history(person, meaning, detailed=True)
        elif meaning.intent == "check_spending":
            reply = self._spending(person, meaning)
        else:
            reply = say.dialogue_act(meaning.intent, meaning.confidence, meaning.source)
        reminder = conversation.reminder()
        if reminder:
            reply.reply = f"{say.sentence(reply.reply)} {reminder}"
        return reply

    def _balance(self, person: Person, meaning: NLUResult) -> AssistantReply:
        balance = self.ledger.balance(person.id)
        return AssistantReply(
            reply=say.balance(balance),
            confidence=meaning.confidence,
            source=meaning.source,
            page="home",
            data={"require_password": False, "balance": rupees_number(balance)},
        )

    def _history(
        self, person: Person, meaning: NLUResult, detailed: bool = False
    ) -> AssistantReply:
        """`detailed` (conversations): each entry also names its counterparty and category,
        for the web app's statement list; /assistant keeps the documented fields alone."""
        count = min(
            meaning.transaction_count or self.settings.history_default_count,
            self.settings.history_max_count,
        )
        entries = self.ledger.history(person.id, count)
        transactions = [
            {
                "type": entry.type,
                "amount": rupees_number(entry.amount),
                "description": entry.description,
                "timestamp": entry.created_at.astimezone(self.zone).strftime(TIMESTAMP_FORMAT),
                "balance_after": rupees_number(entry.balance_after),
                **(
                    {
                        "counterparty": entry.counterparty,
                        "category": category_name(entry.category) if entry.category else None,
                    }
                    if detailed
                    else {}
                ),
            }
            for entry in entries
        ]
        descriptions = [entry.description for entry in entries]
        text = (
            say.recent_transactions(descriptions, self.settings.history_items_spoken)
            if entries
            else say.NO_TRANSACTIONS
        )
        return AssistantReply(
            reply=text,
            confidence=meaning.confidence,
            source=meaning.source,
            page="statements",
            data={
                "require_password": False,
                "transaction_count": len(transactions),
                "transactions": transactions,
            },
        )

    def _spending(self, person: Person, meaning: NLUResult) -> AssistantReply:
        """What the user spent in a period (this month unless said), on one category or all."""
        period = meaning.period or DEFAULT_SPENDING_PERIOD
        # nlu reads periods from its PERIODS, the same names as Period (tests/banking checks).
        start, end = period_range(cast(Period, period), datetime.now(UTC), self.zone)
        spending = self.statements.spending(person.id, start, end, meaning.category)
        return AssistantReply(
            reply=say.spent(spending.total, meaning.category, period, spending.by_category),
            confidence=meaning.confidence,
            source=meaning.source,
            page="statements",
            data={"require_password": False, **spending.as_json(period, meaning.category)},
        )

    def _send(
        self,
        person: Person,
        meaning: NLUResult,
        password: str | None,
        channel: str,
        transfer_id: str | None,
    ) -> AssistantReply:
        """Checks in the documented order: recipient, amount > 0, password, balance."""

        def refuse(text: str) -> AssistantReply:
            return self._transfer_reply(meaning, text, require_password=False, success=False)

        contacts = self.directory.contacts(person.id)
        amount = None if meaning.amount is None else paise_or_none(meaning.amount)
        if meaning.receiver is None:
            return refuse(say.ask_recipient(amount, contacts))
        contact = find_contact(meaning.receiver, contacts)
        if contact is None:
            return refuse(refusals.unknown_recipient(meaning.receiver, contacts))
        if meaning.amount is None:
            return refuse(say.ask_amount(contact.label))
        refusal = amount_refusal(amount, self.transfer_settings.max_transfer_paise)
        if refusal is not None:
            return refuse(refusal)
        assert amount is not None  # amount_refusal refuses a fraction of a paisa
        if password is None:
            # A locked user is told at once; with a password the teller checks the lock
            # itself, and audits the attempt.
            if self.guard.locked(person.id):
                return refuse(refusals.password_refused("locked", self.guard.settings.lock_s))
            # A high-risk transfer is explained first: the password then is the go-ahead.
            unusual = self.teller.unusual(person, contact, amount)
            text = (
                say.confirm_unusual_transfer(amount, contact.label, unusual)
                if unusual
                else say.confirm_transfer(amount, contact.label)
            )
            return self._transfer_reply(meaning, text, require_password=True, success=False)
        outcome = self.teller.execute(
            person, contact, amount, password, channel=channel, transfer_id=transfer_id
        )
        receipt = outcome.receipt
        if receipt is None:
            return refuse(self.teller.refusal_text(outcome, amount))
        return self._transfer_reply(
            meaning,
            say.transferred(amount, contact.label, receipt.sender_balance),
            require_password=False,
            success=True,
            new_balance=receipt.sender_balance,
        )

    @staticmethod
    def _transfer_reply(
        meaning: NLUResult,
        text: str,
        *,
        require_password: bool,
        success: bool,
        new_balance: int | None = None,
    ) -> AssistantReply:
        data: dict[str, object] = {"require_password": require_password, "success": success}
        if new_balance is not None:
            data["balance"] = rupees_number(new_balance)
        return AssistantReply(
            reply=text,
            confidence=meaning.confidence,
            source=meaning.source,
            page="transfer" if success else None,
            data=data,
        )
