"""Fraud routes: seeds/000's `GET /api/ai/fraud/analysis` and seeds/002's
`POST /api/v1/fraud/report` (banking/fraud.py does the work).

Both need the user's access token and act on that user's data only: another user's
transaction is "not found" to them. Each counts against the user's request limit.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from banking import rupees_number
from banking.api.deps import AUTH_RESPONSES, BankDep, LimitedUser
from banking.api.errors import ApiError
from banking.fraud import (
    AlreadyReported,
    FraudMonitor,
    NotAPayment,
    ReportReason,
    TransactionNotFound,
    as_sentences,
)
from banking.models import FraudAlert

router = APIRouter(tags=["fraud"], responses=AUTH_RESPONSES)


def _fraud(bank: BankDep) -> FraudMonitor:
    return bank.fraud


FraudDep = Annotated[FraudMonitor, Depends(_fraud)]


def _iso(moment: datetime) -> str:
    """UTC with a Z, as the seeds print times (the database returns them without a zone)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class Alert(BaseModel):
    """seeds/000's alert, plus its level, reasons and time."""

    fraud_log_id: str
    transaction_id: str = Field(description="the transfer id")
    amount: int | float = Field(description="rupees")
    merchant: str = Field(description="the receiver")
    risk_score: float = Field(description="0-100")
    level: Literal["medium", "high"]
    reasons: list[str]
    details: str = Field(description="the reasons as sentences")
    status: Literal["pending", "reported"]
    created_at: str


class FraudAnalysis(BaseModel):
    total_alerts: int
    pending_reviews: int = Field(description="alerts the user has not reported")
    alerts: list[Alert] = Field(description="newest first")


def _alert(alert: FraudAlert) -> Alert:
    return Alert(
        fraud_log_id=alert.id,
        transaction_id=alert.transfer_id,
        amount=rupees_number(alert.amount),
        merchant=alert.counterparty,
        risk_score=float(alert.score),
        level=alert.level,
        reasons=alert.reasons,
        details=as_sentences(alert.reasons),
        status=alert.status,
        created_at=_iso(alert.created_at),
    )


@router.get("/api/ai/fraud/analysis")
def fraud_analysis(user: LimitedUser, fraud: FraudDep) -> FraudAnalysis:
    """The caller's fraud alerts: transfers that scored medium or high risk, and why."""
    alerts = [_alert(alert) for alert in fraud.alerts(user.user_id)]
    return FraudAnalysis(
        total_alerts=len(alerts),
        pending_reviews=sum(alert.status == "pending" for alert in alerts),
        alerts=alerts,
    )


# A ledger entry id (as GET /api/transactions/ lists it) or a transfer id; a JSON number
# is taken as the entry id.
TransactionId = Annotated[
    str,
    BeforeValidator(lambda value: str(value) if isinstance(value, int) else value),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w-]+$"),
]


class FraudReportRequest(BaseModel):
    transaction_id: TransactionId
    reason: ReportReason
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=1000, pattern=r"^[^\x00]*$")
    ] = ""


class ProvisionalCredit(BaseModel):
    amount: int | float
    applied_at: str


class FraudCase(BaseModel):
    """seeds/002's case."""

    case_id: str
    status: Literal["open"]
    transaction_id: str
    amount: int | float = Field(description="rupees")
    reported_at: str
    provisional_credit: ProvisionalCredit | None = Field(
        description="always null: no money moves until the bank has looked at the case"
    )
    estimated_resolution: str


@router.post(
    "/api/v1/fraud/report",
    status_code=status.HTTP_201_CREATED,
    responses={404: {}, 409: {}, 422: {}},
)
def report_fraud(body: FraudReportRequest, user: LimitedUser, fraud: FraudDep) -> FraudCase:
    """Report one of the caller's payments as fraud: opens a case, one per payment."""
    try:
        case = fraud.report(user.user_id, body.transaction_id, body.reason, body.description)
    except TransactionNotFound as missing:
        raise ApiError(
            status.HTTP_404_NOT_FOUND, "NOT_FOUND", "You have no transaction with that id."
        ) from missing
    except NotAPayment as received:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "INVALID_REQUEST",
            "Only money sent from your account can be reported as fraud.",
        ) from received
    except AlreadyReported as reported:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "ALREADY_REPORTED",
            f"This transaction was already reported: case {reported.case_id}.",
        ) from reported
    return FraudCase(
        case_id=case.id,
        status="open",
        transaction_id=body.transaction_id,
        amount=rupees_number(case.amount),
        reported_at=_iso(case.reported_at),
        provisional_credit=None,
        estimated_resolution=_iso(case.estimated_resolution),
    )
