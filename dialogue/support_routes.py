"""Support conversations of seeds/003: /chat/start, /chat/message, /chat/escalate, /tickets.

Mounted at the root and under /api/v1 (seeds/003's base URL). Errors use seeds/003's
`{"detail": ...}` shape. Until the security issue adds bearer tokens, the ticket routes
are open; they are meant for agents and will need the agent role then. An escalated
conversation still takes messages: the assistant keeps answering until an agent joins.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from dialogue.idempotency import IdempotencyKey, idempotent
from dialogue.reply import DIALOGUE_ACT_REPLIES
from dialogue.routes import (
    GUARDED_RESPONSES,
    MAX_MESSAGE_CHARS,
    MAX_PASSWORD_CHARS,
    AssistantDep,
    UserId,
)
from dialogue.support import (
    ChatMessage,
    ConversationNotFound,
    SupportDesk,
    Ticket,
    TicketNotFound,
    TicketPriority,
    TicketStatus,
)
from dialogue.throttle import spend_request

router = APIRouter(tags=["support"])
MAX_TICKETS_PER_PAGE = 100


def _support(request: Request) -> SupportDesk:
    return request.app.state.support


SupportDep = Annotated[SupportDesk, Depends(_support)]


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
    user_id: UserId
    metadata: dict[str, Any] = {}


class StartResponse(BaseModel):
    conversation_id: str
    status: str
    messages: list[MessageOut]


@router.post("/chat/start", response_model=StartResponse, responses=GUARDED_RESPONSES)
def start(
    body: StartRequest, assistant: AssistantDep, support: SupportDep, request: Request
) -> StartResponse:
    spend_request(request, body.user_id)
    if not assistant.knows(body.user_id):
        raise HTTPException(404, "User not found")
    conversation, greeting = support.start(body.user_id, DIALOGUE_ACT_REPLIES["greet"])
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


@router.post("/chat/message", response_model=MessageResponse, responses=GUARDED_RESPONSES)
def message(
    body: MessageRequest,
    assistant: AssistantDep,
    support: SupportDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """One message of the conversation; `password` confirms a transfer and is never stored."""
    with _found():
        conversation = support.conversation(body.conversation_id)
    spend_request(request, conversation.user_id)

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
    return idempotent(request, idempotency_key, user_id, "support-chat", payload, run)


@router.get(
    "/chat/{conversation_id}/messages",
    response_model=list[MessageOut],
    responses={429: GUARDED_RESPONSES[429]},
)
def messages(conversation_id: str, support: SupportDep, request: Request) -> list[MessageOut]:
    """The stored history, oldest first (our addition to seeds/003)."""
    with _found():
        spend_request(request, support.conversation(conversation_id).user_id)
        return [_message_out(stored) for stored in support.history(conversation_id)]


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
def escalate(body: EscalateRequest, support: SupportDep) -> EscalateResponse:
    """Hand the conversation to a human agent; a second call returns the open ticket."""
    with _found():
        ticket = support.escalate(
            body.conversation_id, body.category, body.priority, body.description
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
        "assigned_to_name": None,  # agents arrive with the security issue's accounts
        "created_at": _timestamp(ticket.created_at),
        "updated_at": _timestamp(ticket.updated_at),
    }


@router.get("/tickets", response_model=list[TicketSummary])
def tickets(
    support: SupportDep,
    status: Status | None = None,
    priority: Priority | None = None,
    assigned_to: int | None = None,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_TICKETS_PER_PAGE)] = MAX_TICKETS_PER_PAGE,
) -> list[TicketSummary]:
    found = support.tickets(status, priority, assigned_to, skip, limit)
    return [TicketSummary.model_validate(_ticket_fields(ticket)) for ticket in found]


@router.get("/tickets/{ticket_id}", response_model=TicketDetails)
def ticket(ticket_id: str, support: SupportDep) -> TicketDetails:
    with _found():
        return TicketDetails.model_validate(_ticket_fields(support.ticket(ticket_id)))


class StatusRequest(BaseModel):
    status: Status


class StatusResponse(BaseModel):
    id: int
    ticket_id: str
    status: str
    assigned_to: int | None


@router.patch("/tickets/{ticket_id}/status", response_model=StatusResponse)
def set_status(ticket_id: str, body: StatusRequest, support: SupportDep) -> StatusResponse:
    with _found():
        changed = support.set_status(ticket_id, body.status)
    return StatusResponse.model_validate(changed.model_dump())
