"""Text-to-speech with piper: a reply is spoken piece by piece, the first piece first.

The first audio byte is what the user waits for, so a reply is cut into sentences and the
first sentence is cut once more, at its first comma or colon or before its first number
("Your current account balance is | 500 rupees.", "Send | 500 rupees to Ravi?"). That
opening is short, so it is synthesised quickly, and the frequent ones come from the
cache, while the rest is synthesised as the opening plays. Amounts are said the Indian way
("1,50,000 rupees" as "one lakh fifty thousand rupees").
"""

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig
from pydantic import BaseModel, ConfigDict

from dialogue.speech import aloud
from nlu.onnx_session import cpu_session
from voice.audio import float_to_pcm16

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Where the first sentence is cut: after a comma or colon, or before a number.
OPENING_END = re.compile(r"(?<=[,:])\s+|\s+(?=\d)")


class TtsSettings(BaseModel):
    """Values come from config.yaml (voice.tts), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    cpu_threads: int
    length_scale: float
    cache_size: int
    prewarm: list[str]


def speech_pieces(text: str) -> list[str]:
    """Sentences, the first one cut after its opening words (see the module docstring)."""
    sentences = [sentence for sentence in SENTENCE_END.split(text.strip()) if sentence]
    if not sentences:
        return []
    first, *rest = sentences
    return [*OPENING_END.split(first, maxsplit=1), *rest]


class TextToSpeech:
    """One piper voice; synthesis runs one piece at a time (callers use a worker thread)."""

    def __init__(self, voice_path: Path, settings: TtsSettings) -> None:
        config = PiperConfig.from_dict(json.loads(Path(f"{voice_path}.json").read_text()))
        session = cpu_session(voice_path, settings.cpu_threads)
        self._voice = PiperVoice(session=session, config=config)
        self._synthesis = SynthesisConfig(length_scale=settings.length_scale)
        self._settings = settings
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.sample_rate: int = config.sample_rate
        # Pieces found in the cache and synthesised, reported by /api/metrics.
        self.cache_hits = 0
        self.cache_misses = 0

    def warm_up(self) -> None:
        """Load the phonemiser and fill the cache with the frequent openings."""
        for text in self._settings.prewarm:
            self.synthesize(text)

    def pieces(self, text: str) -> Iterator[bytes]:
        """PCM16 audio of the text, one piece (sentence or opening) at a time; amounts
        said in words with lakhs and crores (dialogue/speech.py)."""
        for piece in speech_pieces(text):
            audio = self.synthesize(aloud(piece))
            if audio:
                yield audio

    def synthesize(self, piece: str) -> bytes:
        """PCM16 audio of one piece of text, from the cache when it was said before."""
        with self._lock:
            cached = self._cache.get(piece)
            if cached is not None:
                self._cache.move_to_end(piece)
                self.cache_hits += 1
                return cached
            self.cache_misses += 1
            audio = self._render(piece)
            self._cache[piece] = audio
            if len(self._cache) > self._settings.cache_size:
                self._cache.popitem(last=False)
            return audio

    def render(self, piece: str) -> bytes:
        """PCM16 audio of one piece, synthesised now whatever the cache holds (a probe)."""
        with self._lock:
            return self._render(piece)

    def _render(self, piece: str) -> bytes:
        chunks = [
            chunk.audio_float_array
            for chunk in self._voice.synthesize(piece, syn_config=self._synthesis)
        ]
        return float_to_pcm16(np.concatenate(chunks)) if chunks else b""
