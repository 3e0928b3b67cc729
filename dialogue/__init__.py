"""Assistant.turn(): the dialogue logic behind every channel."""

from banking import Factor
from dialogue.assistant import Assistant, AssistantSettings
from dialogue.reply import AssistantReply
from dialogue.sessions import SessionSettings, make_session_store

__all__ = [
    "Assistant",
    "AssistantReply",
    "AssistantSettings",
    "Factor",
    "SessionSettings",
    "make_session_store",
]
