"""Audio in and out around Assistant.turn(): VAD, speech-to-text, text-to-speech, channels.

The public surface: `load_voice()` builds the shared `VoiceServices` from model files the
composition root has located; `routes.router` serves WS /ws/voice and the widget.
"""

from pathlib import Path

from dialogue import Assistant
from voice.session import VoiceServices, VoiceSession, VoiceSettings
from voice.stt import SpeechToText
from voice.tts import TextToSpeech
from voice.turn import SmartTurn, TurnJudge


def load_voice(
    assistant: Assistant,
    settings: VoiceSettings,
    *,
    stt_model: Path,
    tts_voice: Path,
    vad_model: Path,
    turn_model: Path,
) -> VoiceServices:
    """Load the speech models (a few seconds); `warm_up()` is left to the caller's thread."""
    turn = settings.turn
    judge = TurnJudge(SmartTurn(turn_model, turn.cpu_threads), turn) if turn.enabled else None
    return VoiceServices(
        assistant=assistant,
        stt=SpeechToText(stt_model, settings.stt),
        tts=TextToSpeech(tts_voice, settings.tts),
        vad_model=vad_model,
        settings=settings,
        turn=judge,
    )


__all__ = ["VoiceServices", "VoiceSession", "VoiceSettings", "load_voice"]
