"""The assistant's dependencies, typed, for the routes of dialogue/api and the voice
channels; banking/api/deps.py has the bank's (who calls, the request limit, ...)."""

from typing import Annotated

from fastapi import Depends
from fastapi.requests import HTTPConnection

from dialogue.api.services import DialogueServices
from dialogue.assistant import Assistant
from nlu import Pipeline

MAX_MESSAGE_CHARS = 1000
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def _dialogue(connection: HTTPConnection) -> DialogueServices:
    """For HTTP and WebSocket routes alike (server.py puts them there)."""
    services: DialogueServices = connection.app.state.services.dialogue
    return services


DialogueDep = Annotated[DialogueServices, Depends(_dialogue)]


def _assistant(dialogue: DialogueDep) -> Assistant:
    return dialogue.assistant


def _pipeline(dialogue: DialogueDep) -> Pipeline:
    return dialogue.pipeline


AssistantDep = Annotated[Assistant, Depends(_assistant)]
PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
