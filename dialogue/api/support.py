"""Support conversations of seeds/003: /chat/start, /chat/message, /chat/escalate, /tickets.

Mounted at the root and under /api/v1 (seeds/003's base URL). Errors use seeds/003's
`{"detail": ...}` shape. An escalated conversation still takes messages: the assistant
keeps answering until an agent joins.

Who may do what (bearer tokens, banking/api/deps.py): a customer starts, talks in and
escalates their own conversations and reads their own history and tickets; anyone else's
are "not found" to them. Agents and admins read every conversation's history and every
ticket, and only they change a ticket's status (403 for customers). In demo mode a
request without a token may do all of it, as before tokens.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from banking.api.deps import (
    AUTH_RESPONSES,
    GUARDED_RESPONSES,
    MAX_ID,
    MAX_PASSWORD_CHARS,
    BankDep,
    Caller,
    IdempotencyKey,
    UserId,
    UsersDep,
    acting_user,
    idempotent,
    rate_limited,
    require_role,
    role_of,
)
from banking.support import (
    ChatMessage,
    Conversation,
    ConversationNotFound,
    SupportDesk,
    Ticket,
    TicketNotFound,
    TicketPriority,
    TicketStatus,
)
from banking.users import STAFF
from dialogue.api.deps import MAX_MESSAGE_CHARS, AssistantDep
from dialogue.reply import DIALOGUE_ACT_REPLIES

router = APIRouter(tags=["support"], responses=AUTH_RESPONSES)
MAX_TICKETS_PER_PAGE = 100


def _support(bank: BankDep) -> SupportDesk:
    return bank.support


SupportDep = Annotated[SupportDesk, Depends(_support)]


def _reader(caller: Caller, users: UsersDep) -> int | None:
    """Whose conversations and tickets the caller may read: everyone's (None) for agents and
    admins, and in demo mode without a token; else the caller's own."""
    role = role_of(caller, users)
    return None if role is None or role in STAFF else caller


Reader = Annotated[int | None, Depends(_reader)]


@contextmanager
def _found() -> Iterator[None]:
    """A conversation or ticket that does not exist, as seeds/003's 404."""
    try:
        yield
    except ConversationNotFound as missing:
        raise HTTPException(404, "Conversation not found") from missing
    except TicketNotFound as missing:
        raise HTTPException(404, "Ticket not found") from missing


def _upper(value: object) -> object:
    """seeds/003 accepts "high" as well as "HIGH"."""
    return value.upper() if isinstance(value, str) else value


Priority = Annotated[TicketPriority, BeforeValidator(_upper)]
Status = Annotated[TicketStatus, BeforeValidator(_upper)]


class MessageOut(BaseModel):
    id: int
    role: str
    content: str
    timestamp: str


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _message_out(message: ChatMessage) -> MessageOut:
    assert message.id is not None
    return MessageOut(
        id=message.id,
        role=message.role,
        content=message.content,
        timestamp=_timestamp(message.timestamp),
    )


class StartRequest(BaseModel):
    user_id: Annotated[
        UserId | None, Field(description="The token's user (optional); in demo mode, whose chat")
    ] = None
    metadata: dict[str, Any] = {}


class StartResponse(BaseModel):
    conversation_id: str
    status: str
    messages: list[MessageOut]


def _start_checked(body: StartRequest, caller: Caller) -> StartRequest:
    """The request with its user: the token's, whom a `user_id` in it must name."""
    body.user_id = acting_user(caller, body.user_id)  # filled in if left out
    return body


def _starter(body: StartRequest) -> int:
    assert body.user_id is not None  # _start_checked filled it in
    return body.user_id


@router.post("/chat/start", response_model=StartResponse, responses=GUARDED_RESPONSES)
def start(
    body: Annotated[StartRequest, rate_limited(_start_checked, _starter)],
    assistant: AssistantDep,
    support: SupportDep,
) -> StartResponse:
    user_id = _starter(body)
    if not assistant.knows(user_id):
        raise HTTPException(404, "User not found")
    conversation, greeting = support.start(user_id, DIALOGUE_ACT_REPLIES["greet"])
    return StartResponse(
        conversation_id=conversation.id, status="started", messages=[_message_out(greeting)]
    )


class MessageRequest(BaseModel):
    conversation_id: str
    message: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
    ]
    context: dict[str, Any] = {}
    password: Annotated[str | None, Field(max_length=MAX_PASSWORD_CHARS)] = None


class MessageResponse(BaseModel):
    message: str
    metadata: dict[str, Any]
    conversation_id: str


class Addressed(NamedTuple):
    body: MessageRequest
    conversation: Conversation


def _addressed(body: MessageRequest, support: SupportDep, caller: Caller) -> Addressed:
    """The message and its conversation: the caller's own (in demo mode without a token,
    any); seeds/003's 404 otherwise."""
    with _found():
        return Addressed(body, support.conversation(body.conversation_id, owner=caller))


def _conversation_owner(addressed: Addressed) -> int:
    return addressed.conversation.user_id


@router.post("/chat/message", response_model=MessageResponse, responses=GUARDED_RESPONSES)
def message(
    addressed: Annotated[Addressed, rate_limited(_addressed, _conversation_owner)],
    assistant: AssistantDep,
    support: SupportDep,
    bank: BankDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """One message of the conversation; `password` confirms a transfer and is never stored."""
    body, conversation = addressed

    def run(_transfer_id: str | None) -> JSONResponse:
        # A conversation's transfer has its own id, kept with the conversation.
        answer = assistant.turn(
            conversation.user_id,
            body.message,
            body.password,
            session_id=conversation.id,
            channel="support-chat",
        )
        support.record(conversation.id, body.message, answer.message_was_secret, answer.reply)
        metadata = answer.body()
        del metadata["reply"]
        content = MessageResponse(
            message=answer.reply, metadata=metadata, conversation_id=conversation.id
        )
        return JSONResponse(content.model_dump())

    payload = {**body.model_dump(exclude={"password"}), "password_given": bool(body.password)}
    user_id = conversation.user_id
    return idempotent(bank, idempotency_key, user_id, "support-chat", payload, run)


def _readable(conversation_id: str, support: SupportDep, reader: Reader) -> Conversation:
    """The conversation, if the reader may read it (seeds/003's 404 otherwise)."""
    with _found():
        return support.conversation(conversation_id, reader)


def _owner(conversation: Conversation) -> int:
    return conversation.user_id


@router.get(
    "/chat/{conversation_id}/messages",
    response_model=list[MessageOut],
    responses={429: GUARDED_RESPONSES[429]},
)
def messages(
    conversation: Annotated[Conversation, rate_limited(_readable, _owner)],
    support: SupportDep,
    reader: Reader,
) -> list[MessageOut]:
    """The stored history, oldest first (our addition to seeds/003)."""
    with _found():
        return [_message_out(stored) for stored in support.history(conversation.id, reader)]


class EscalateRequest(BaseModel):
    conversation_id: str
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "general"
    priority: Priority = TicketPriority.MEDIUM
    description: Annotated[str | None, Field(max_length=2000)] = None
    metadata: dict[str, Any] = {}


class EscalateResponse(BaseModel):
    message: str
    ticket_id: str
    conversation_id: str


@router.post("/chat/escalate", response_model=EscalateResponse)
def escalate(body: EscalateRequest, support: SupportDep, caller: Caller) -> EscalateResponse:
    """Hand the conversation to a human agent; a second call returns the open ticket."""
    with _found():
        ticket = support.escalate(
            body.conversation_id, body.category, body.priority, body.description, owner=caller
        )
    return EscalateResponse(
        message="Conversation escalated to human agent",
        ticket_id=ticket.ticket_id,
        conversation_id=body.conversation_id,
    )


class TicketSummary(BaseModel):
    id: int
    ticket_id: str
    customer_name: str
    subject: str
    status: str
    priority: str
    assigned_to: int | None
    created_at: str


class TicketDetails(TicketSummary):
    conversation_id: str | None
    customer_email: str
    description: str
    category: str
    assigned_to_name: str | None
    updated_at: str


def _ticket_fields(ticket: Ticket) -> dict[str, Any]:
    return {
        **ticket.model_dump(),
        "assigned_to_name": None,  # tickets are not assigned to agents yet
        "created_at": _timestamp(ticket.created_at),
        "updated_at": _timestamp(ticket.updated_at),
    }


@router.get("/tickets", response_model=list[TicketSummary])
def tickets(
    support: SupportDep,
    reader: Reader,
    status: Status | None = None,
    priority: Priority | None = None,
    assigned_to: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    # Beyond a database integer, an offset is refused (422) instead of failing in SQL.
    skip: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_TICKETS_PER_PAGE)] = MAX_TICKETS_PER_PAGE,
) -> list[TicketSummary]:
    found = support.tickets(status, priority, assigned_to, skip, limit, owner=reader)
    return [TicketSummary.model_validate(_ticket_fields(ticket)) for ticket in found]


@router.get("/tickets/{ticket_id}", response_model=TicketDetails)
def ticket(ticket_id: str, support: SupportDep, reader: Reader) -> TicketDetails:
    with _found():
        found = support.ticket(ticket_id, owner=reader)
        return TicketDetails.model_validate(_ticket_fields(found))


class StatusRequest(BaseModel):
    status: Status


class StatusResponse(BaseModel):
    id: int
    ticket_id: str
    status: str
    assigned_to: int | None


@router.patch(
    "/tickets/{ticket_id}/status",
    response_model=StatusResponse,
    dependencies=[Depends(require_role(*STAFF))],
)
def set_status(ticket_id: str, body: StatusRequest, support: SupportDep) -> StatusResponse:
    with _found():
        changed = support.set_status(ticket_id, body.status)
    return StatusResponse.model_validate(changed.model_dump())
