"""The audit trail: every transfer attempt, who made it, on which channel, and how it ended.

The table is append-only. This module only ever inserts, and the database refuses an
UPDATE or DELETE (a trigger on PostgreSQL and on SQLite; on PostgreSQL TRUNCATE too).
A completed transfer's row is written by the ledger in the transfer's own transaction,
so a committed transfer always has its row; refused attempts are recorded here.
"""

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import DDL, Engine, event, func
from sqlmodel import Field, Session, SQLModel, col, select

Outcome = Literal["completed", "refused"]


class TransferAudit(SQLModel, table=True):
    __tablename__ = "transfer_audit"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime
    user_id: int = Field(index=True, description="who asked for the transfer")
    channel: str = Field(description="assistant, chat, chat-ws, support-chat, ...")
    amount: int = Field(description="paise")
    receiver_user_id: int
    receiver: str = Field(description="the contact as the user named it")
    outcome: str  # an Outcome
    reason: str | None = Field(default=None, description="why it was refused")
    transfer_id: str | None = Field(default=None, index=True)


# The model's Table (SQLModel declares no `__table__` to a type checker).
_TABLE = TransferAudit.metadata.tables["transfer_audit"]
_REFUSE = "RAISE EXCEPTION 'transfer_audit is append-only'"
for statement in (
    "CREATE OR REPLACE FUNCTION transfer_audit_append_only() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN {_REFUSE}; END $$",
    "CREATE TRIGGER transfer_audit_no_change BEFORE UPDATE OR DELETE ON transfer_audit "
    "FOR EACH ROW EXECUTE FUNCTION transfer_audit_append_only()",
    "CREATE TRIGGER transfer_audit_no_truncate BEFORE TRUNCATE ON transfer_audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION transfer_audit_append_only()",
):
    event.listen(_TABLE, "after_create", DDL(statement).execute_if(dialect="postgresql"))
for action in ("UPDATE", "DELETE"):
    event.listen(
        _TABLE,
        "after_create",
        DDL(
            f"CREATE TRIGGER transfer_audit_no_{action.lower()} BEFORE {action} ON transfer_audit "
            "BEGIN SELECT RAISE(ABORT, 'transfer_audit is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )


def audit_row(
    *,
    user_id: int,
    channel: str,
    amount: int,
    receiver_user_id: int,
    receiver: str,
    outcome: Outcome,
    reason: str | None = None,
    transfer_id: str | None = None,
) -> TransferAudit:
    return TransferAudit(
        created_at=datetime.now(UTC),
        user_id=user_id,
        channel=channel,
        amount=amount,
        receiver_user_id=receiver_user_id,
        receiver=receiver,
        outcome=outcome,
        reason=reason,
        transfer_id=transfer_id,
    )


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, row: TransferAudit) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(row)

    def last_id(self, user_id: int, channel: str) -> int | None:
        """The id of the user's latest attempt on `channel`, if any."""
        with Session(self.engine) as session:
            query = select(func.max(TransferAudit.id)).where(
                TransferAudit.user_id == user_id, TransferAudit.channel == channel
            )
            return session.exec(query).one()

    def for_user(self, user_id: int) -> list[TransferAudit]:
        """The user's attempts, oldest first."""
        with Session(self.engine) as session:
            query = (
                select(TransferAudit)
                .where(TransferAudit.user_id == user_id)
                .order_by(col(TransferAudit.id))
            )
            return list(session.exec(query).all())
