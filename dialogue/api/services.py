"""The assistant's services, built once from its settings: what dialogue/api's routes (and
the voice channels) depend on, as banking/bank.py's `Bank` is for the bank's."""

import logging
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from banking.bank import Bank
from dialogue.assistant import Assistant, AssistantSettings
from dialogue.monitoring.health import InferenceProbes, SpeechModels
from dialogue.monitoring.metrics import Metrics
from dialogue.monitoring.observatory import DialogueObservatory
from dialogue.monitoring.settings import ObservabilitySettings
from nlu import BackendSettings, NLUSettings, Pipeline, build_pipeline
from nlu.llm import LLMSettings
from nlu.rasa import RasaSettings
from nlu.semantic import EmbeddingSettings


class DialogueSettings(BaseModel):
    """The sections of config.yaml the assistant reads; it documents each key."""

    model_config = ConfigDict(extra="forbid")

    service_name: str
    nlu: NLUSettings
    rasa: RasaSettings
    llm: LLMSettings
    embedding: EmbeddingSettings
    assistant: AssistantSettings
    observability: ObservabilitySettings


@dataclass(frozen=True)
class DialogueServices:
    assistant: Assistant
    pipeline: Pipeline
    metrics: Metrics
    voice: SpeechModels | None  # the speech models, when the voice channel is on
    observatory: DialogueObservatory  # what the admin routes report (banking/api/admin.py)
    max_ws_message_bytes: int  # the most a text WebSocket message may hold


def open_assistant(settings: DialogueSettings, bank: Bank) -> Assistant:
    """The assistant on the bank, with its NLU cascade (which may start Rasa: seconds)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its URLs carry Rasa's token
    backends = BackendSettings(rasa=settings.rasa, llm=settings.llm, embedding=settings.embedding)
    pipeline = build_pipeline(settings.nlu, backends)
    return Assistant(
        pipeline,
        bank.ledger,
        bank.directory,
        settings.assistant,
        bank.store,
        bank.teller,
        bank.statements,
    )


def open_dialogue(
    settings: DialogueSettings,
    assistant: Assistant,
    voice: SpeechModels | None,
    bank: Bank,
    max_ws_message_bytes: int,
) -> DialogueServices:
    """The assistant's services, its metrics told of turns, NLU stage calls, spoken turns
    and the bank's transfer outcomes, and the observatory the admin routes report on."""
    metrics = Metrics(settings.observability.recent_errors)
    assistant.listeners.append(metrics.turn)
    assistant.nlu.listeners.append(metrics.nlu_stage)
    bank.events.subscribe(metrics.transfer_event)
    if voice is not None:
        voice.listeners.append(metrics.voice_turn)
    observatory = DialogueObservatory(
        engine=bank.engine,
        store=bank.store,
        demo_mode=bank.demo_mode,
        pipeline=assistant.nlu,
        voice=voice,
        metrics=metrics,
        probes=InferenceProbes(settings.observability.inference_probe_interval_s),
        service_name=settings.service_name,
        metrics_token=settings.observability.metrics_token,
    )
    return DialogueServices(
        assistant=assistant,
        pipeline=assistant.nlu,
        metrics=metrics,
        voice=voice,
        observatory=observatory,
        max_ws_message_bytes=max_ws_message_bytes,
    )
