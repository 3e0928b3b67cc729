"""Support conversations with stored history, and tickets that hand one to a human agent.

A conversation's id is also its dialogue session id, so a transfer can be set up over
several messages. Stored messages are what was said; a message that was the user's
password is stored masked, and the password field itself is never stored.

Reads take an `owner`: a customer's user id limits them to that customer's conversations
and tickets, and anyone else's are "not found"; None (an agent) reaches all.
"""

import secrets
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from banking.db import writing
from banking.models import User

MASKED = "••••••"


class TicketStatus(StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class TicketPriority(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


class Conversation(SQLModel, table=True):
    id: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    status: str = "active"  # "escalated" once a ticket hands it to an agent
    created_at: datetime


class ChatMessage(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True)
    role: str  # "user" or "assistant"
    content: str
    timestamp: datetime


class Ticket(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(unique=True, index=True)
    conversation_id: str | None = Field(default=None, foreign_key="conversation.id", index=True)
    customer_name: str
    customer_email: str
    subject: str
    description: str
    status: str = Field(default=TicketStatus.OPEN, index=True)  # a TicketStatus
    priority: str = TicketPriority.MEDIUM  # a TicketPriority
    category: str
    assigned_to: int | None = None
    created_at: datetime
    updated_at: datetime


class ConversationNotFound(LookupError):
    pass


class TicketNotFound(LookupError):
    pass


def _owned_by(conversation: Conversation, owner: int | None) -> bool:
    return owner is None or conversation.user_id == owner


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class SupportDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, user_id: int, greeting: str) -> tuple[Conversation, ChatMessage]:
        conversation = Conversation(id=str(uuid.uuid4()), user_id=user_id, created_at=_now())
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(conversation)
            session.flush()
            message = self._add(session, conversation.id, "assistant", greeting)
            session.commit()
        return conversation, message

    def conversation(self, conversation_id: str, owner: int | None = None) -> Conversation:
        with Session(self.engine) as session:
            found = session.get(Conversation, conversation_id)
        if found is None or not _owned_by(found, owner):
            raise ConversationNotFound(conversation_id)
        return found

    def record(self, conversation_id: str, said: str, secret: bool, answer: str) -> None:
        """Store one exchange: the user's words (masked when they were the password)."""
        with Session(self.engine) as session:
            self._add(session, conversation_id, "user", MASKED if secret else said)
            self._add(session, conversation_id, "assistant", answer)
            session.commit()

    def history(self, conversation_id: str, owner: int | None = None) -> list[ChatMessage]:
        self.conversation(conversation_id, owner)
        with Session(self.engine) as session:
            query = (
                select(ChatMessage)
                .where(ChatMessage.conversation_id == conversation_id)
                .order_by(col(ChatMessage.id))
            )
            return list(session.exec(query))

    def escalate(
        self,
        conversation_id: str,
        category: str,
        priority: TicketPriority,
        description: str | None,
        owner: int | None = None,
    ) -> Ticket:
        """Open a ticket for the conversation, or return the one still open.

        The conversation row is locked (FOR UPDATE on PostgreSQL, the write lock from BEGIN
        IMMEDIATE on SQLite) before looking for an open ticket, so escalations sent at once
        (a double click, two tabs) find the first one's ticket instead of opening more.
        """
        with Session(writing(self.engine), expire_on_commit=False) as session:
            conversation = session.get(Conversation, conversation_id, with_for_update=True)
            if conversation is None or not _owned_by(conversation, owner):
                raise ConversationNotFound(conversation_id)
            open_ticket = session.exec(
                select(Ticket).where(
                    Ticket.conversation_id == conversation_id,
                    col(Ticket.status).in_((TicketStatus.OPEN, TicketStatus.IN_PROGRESS)),
                )
            ).first()
            if open_ticket is not None:
                return open_ticket
            user = session.get(User, conversation.user_id)
            assert user is not None  # a foreign key
            first_words = session.exec(
                select(ChatMessage.content)
                .where(ChatMessage.conversation_id == conversation_id, ChatMessage.role == "user")
                .order_by(col(ChatMessage.id))
            ).first()
            now = _now()
            ticket = Ticket(
                ticket_id=self._new_ticket_id(session),
                conversation_id=conversation_id,
                customer_name=user.name,
                customer_email=user.email,
                subject=(first_words or category.replace("_", " ").capitalize())[:120],
                description=description or "Customer asked for a human agent",
                priority=priority,
                category=category,
                created_at=now,
                updated_at=now,
            )
            conversation.status = "escalated"
            session.add_all([ticket, conversation])
            session.commit()
            return ticket

    def tickets(
        self,
        status: TicketStatus | None,
        priority: TicketPriority | None,
        assigned_to: int | None,
        skip: int,
        limit: int,
        owner: int | None = None,
    ) -> list[Ticket]:
        query = select(Ticket).order_by(col(Ticket.id)).offset(skip).limit(limit)
        if owner is not None:
            query = query.join(Conversation).where(Conversation.user_id == owner)
        if status is not None:
            query = query.where(Ticket.status == status)
        if priority is not None:
            query = query.where(Ticket.priority == priority)
        if assigned_to is not None:
            query = query.where(Ticket.assigned_to == assigned_to)
        with Session(self.engine) as session:
            return list(session.exec(query))

    def ticket(self, ticket_id: str, owner: int | None = None) -> Ticket:
        with Session(self.engine) as session:
            found = self._ticket(session, ticket_id)
            if owner is not None:
                conversation = found.conversation_id and session.get(
                    Conversation, found.conversation_id
                )
                if not conversation or conversation.user_id != owner:
                    raise TicketNotFound(ticket_id)
            return found

    def set_status(self, ticket_id: str, status: TicketStatus) -> Ticket:
        with Session(self.engine, expire_on_commit=False) as session:
            ticket = self._ticket(session, ticket_id)
            ticket.status, ticket.updated_at = status, _now()
            session.add(ticket)
            session.commit()
            return ticket

    @staticmethod
    def _ticket(session: Session, ticket_id: str) -> Ticket:
        found = session.exec(select(Ticket).where(Ticket.ticket_id == ticket_id)).first()
        if found is None:
            raise TicketNotFound(ticket_id)
        return found

    @staticmethod
    def _new_ticket_id(session: Session) -> str:
        """TKT- and 8 random hex digits (seeds/003's form), not one already given out."""
        while True:
            ticket_id = f"TKT-{secrets.token_hex(4).upper()}"
            if session.exec(select(Ticket.id).where(Ticket.ticket_id == ticket_id)).first() is None:
                return ticket_id

    @staticmethod
    def _add(session: Session, conversation_id: str, role: str, content: str) -> ChatMessage:
        message = ChatMessage(
            conversation_id=conversation_id, role=role, content=content, timestamp=_now()
        )
        session.add(message)
        return message
