"""seeds/002's conversation metadata on a chat reply: time taken, model, PII, audit row.

`model_used` names what read the message: the rules, Rasa's trained model file or the LLM
model's id ("system" for replies no reading decided). `pii_detected` lists the kinds of
personal data found in the user's message ("password" when the message was the password
the assistant asked for); `pii_masked` is true when some was found and the reply repeats
none of it (any piece the reply would have repeated is masked in it). `audit_log_id` is
the id of the transfer audit row this turn wrote (banking/audit.py), null when it tried no
transfer; two turns of one user on the same channel at the same instant could swap ids.
"""

import time
from datetime import UTC, datetime

from pydantic import BaseModel

from banking.audit import AuditLog
from dialogue.monitoring import pii
from dialogue.reply import AssistantReply
from nlu import Pipeline
from nlu.stages import LLMStage, RasaStage


class ConversationMetadata(BaseModel):
    session_id: str
    timestamp: str
    processing_time_ms: float
    model_used: str
    confidence_score: float
    pii_detected: list[str]
    pii_masked: bool
    audit_log_id: int | None


class TurnWatch:
    """Started before a turn, `finish()`ed after it."""

    def __init__(self, audit: AuditLog, pipeline: Pipeline, user_id: int, channel: str) -> None:
        self.audit, self.pipeline = audit, pipeline
        self.user_id, self.channel = user_id, channel
        self.audit_before = audit.last_id(user_id, channel)
        self.started = time.perf_counter()

    def finish(
        self, message: str, answer: AssistantReply, session_id: str
    ) -> tuple[str, ConversationMetadata]:
        """The reply text to send (personal data from the message masked) and its metadata."""
        elapsed_ms = round((time.perf_counter() - self.started) * 1000, 1)
        found = [] if answer.message_was_secret else pii.find(message)
        reply = pii.mask_in(answer.reply, found)
        kinds = sorted({piece.kind for piece in found})
        if answer.message_was_secret:
            kinds = ["password"]
        audit_after = self.audit.last_id(self.user_id, self.channel)
        metadata = ConversationMetadata(
            session_id=session_id,
            timestamp=datetime.now(UTC).isoformat(timespec="milliseconds"),
            processing_time_ms=elapsed_ms,
            model_used=self._model(answer.source),
            confidence_score=answer.confidence,
            pii_detected=kinds,
            pii_masked=bool(kinds) and not any(piece.text in reply for piece in found),
            audit_log_id=audit_after if audit_after != self.audit_before else None,
        )
        return reply, metadata

    def _model(self, source: str) -> str:
        stage = next((s for s in self.pipeline.stages if s.name == source), None)
        if source == "llm" and isinstance(stage, LLMStage):
            return stage.model_id
        if source == "rasa" and isinstance(stage, RasaStage):
            return f"rasa:{stage.server.model_name}"
        return source
