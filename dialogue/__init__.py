"""Assistant.turn(): the dialogue logic behind every channel."""

from banking import Factor
from dialogue.assistant import Assistant, AssistantSettings
from dialogue.expectation import Expectation
from dialogue.reply import AssistantReply

__all__ = [
    "Assistant",
    "AssistantReply",
    "AssistantSettings",
    "Expectation",
    "Factor",
]
