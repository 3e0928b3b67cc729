"""End of turn: is the speaker done, or only pausing mid-sentence?

A fixed silence hang-over answers "check my balance" and "send five hundred to …" alike:
too slow for the first, too soon for the second. After a short pause (`voice.vad.
early_transcribe_ms`) the session asks `TurnJudge.complete()`, which reads two things:

- the words heard so far (the early transcript) against what the dialogue waits for: a
  sentence ending in "to", "and", "um" … is not done, nor is a transfer command still
  lacking its amount or receiver; a bare answer (a name, an amount, yes, a PIN) to a
  question asked is short, and done once heard, as is a request the rules read whole;
- otherwise Smart Turn v3.2 (pipecat-ai's ONNX end-of-turn model, a Whisper-encoder
  classifier) on the audio: its probability that the turn is complete.

Complete: the session answers now (a bare amount, which may go on after a pause, after
`amount_silence_ms`). Not complete: it keeps listening, up to `max_silence_ms` of silence.
Smart Turn reads the last 8 s of 16 kHz audio, left-padded
with zeros, normalised to zero mean and unit variance, as Whisper log-mel features of an
8-second window; faster-whisper's own feature extractor computes them.

Backchannels ("mm-hmm", "okay", "yeah") said while the assistant speaks are no barge-in:
`is_backchannel()` tells them from a real interruption.
"""

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor
from pydantic import BaseModel, ConfigDict, Field

from dialogue.conversation import Awaiting
from nlu import rules
from nlu.onnx_session import cpu_session
from voice.audio import PIPELINE_RATE

WINDOW_S = 8  # Smart Turn reads the last 8 s
NORM_EPS = 1e-7  # the variance floor of the waveform normalisation
# Words a finished sentence does not end with: the speaker is thinking of what comes next
# ("show my last …" five transactions; "who did I pay last" waits for nothing longer).
HANGING_WORDS = frozenset(
    "to and um umm uh uhh er erm hmm or for the a an of from with my your but so "
    "last latest recent past "
    # Prepositions ("how much did I spend on …", "… during …") and a verb still
    # waiting for its object ("can you send …").
    "on in at about during into onto over under between through by towards via per than "
    "send give show tell".split()
)
# A question broken off after its subject: "how much money do I …", "what have we …".
HANGING_QUESTION = re.compile(r"\b(?:do|did|does|can|could|should|would|have|has|am) (?:i|we)$")
# What a listener says to show they follow, not to take the turn ("mm-hmm", "oh, I see").
BACKCHANNEL_WORDS = frozenset(
    "mm mmm hm hmm mhm uh huh oh ah okay ok yeah yep yes right sure alright i see got it".split()
)
HUMMING = re.compile(r"[mh]+")  # "mm", "m-m-m", "mhm" as whisper writes them

# A transfer whose words end in a number below this (rupees), said last, is heard as a
# number still growing ("give Mom three" … "lakh", "send Ravi twenty" … "five thousand").
GROWING_BELOW = 100
# Questions whose bare answers are short: once heard, the turn is done.
SHORT_ANSWERS: frozenset[Awaiting] = frozenset(
    {"receiver", "receiver_confirmation", "amount", "confirmation", "password"}
)
# While one of these is asked, "yeah" or "okay" is the answer, not a backchannel.
YES_NO_QUESTIONS: frozenset[Awaiting] = frozenset({"receiver_confirmation", "confirmation"})


class TurnSettings(BaseModel):
    """Values come from config.yaml (voice.turn), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    model: str  # models/manifest.yaml id of the Smart Turn ONNX file
    threshold: float = Field(ge=0.0, le=1.0)
    max_silence_ms: int = Field(ge=100, le=10000)
    amount_silence_ms: int = Field(ge=0, le=10000)
    barge_in_ms: int = Field(ge=0, le=5000)
    cpu_threads: int = Field(ge=1)


class SmartTurn:
    """Smart Turn v3.2: probability that the speaker has finished their turn."""

    def __init__(self, model_path: Path, cpu_threads: int = 1) -> None:
        self._session = cpu_session(model_path, cpu_threads)
        self._input = self._session.get_inputs()[0].name
        self._features = FeatureExtractor(chunk_length=WINDOW_S)
        self._lock = threading.Lock()  # the extractor is not shared between threads

    def probability(self, audio: np.ndarray) -> float:
        """`audio`: float32 at 16 kHz, the utterance so far (its trailing pause included)."""
        window = WINDOW_S * PIPELINE_RATE
        clip = np.asarray(audio, dtype=np.float32)[-window:]
        clip = np.pad(clip, (window - clip.size, 0))
        clip = (clip - clip.mean()) / np.sqrt(clip.var() + NORM_EPS)
        with self._lock:
            features = self._features(clip, padding=0)
        outputs = self._session.run(None, {self._input: features[np.newaxis].astype(np.float32)})
        return float(np.asarray(outputs[0]).reshape(-1)[0])


@dataclass(frozen=True)
class ModelVerdict:
    complete: bool
    probability: float
    cpu_ms: float  # CPU time of the check (features and model, one thread)


class TurnJudge:
    """Decides, at a pause, whether the turn is over (see the module's docstring). The
    session asks the words first, and the model only when they do not tell."""

    def __init__(self, model: SmartTurn, settings: TurnSettings) -> None:
        self.model = model
        self.settings = settings

    def by_words(self, text: str, awaiting: Awaiting | None) -> bool | None:
        """Complete or not as the words and the dialogue say; None when they do not tell.

        Complete: a bare answer to the question asked, or a request the rules read whole
        (Smart Turn, trained on people, often hears synthetic voices' endings as pauses)."""
        if unfinished(text, awaiting):
            return False
        if awaiting in SHORT_ANSWERS or rules.parse(text).intent != "unknown":
            return True
        return None

    def settle_ms(self, complete: bool, awaiting: Awaiting | None) -> int:
        """The silence a turn needs before it is answered. A bare amount is complete once
        heard, yet may go on after a pause ("seventy five … thousand", "one lakh … fifty
        thousand"), and each piece alone is another amount: it waits longer."""
        if not complete:
            return self.settings.max_silence_ms
        return self.settings.amount_silence_ms if awaiting == "amount" else 0

    def by_model(self, audio: np.ndarray) -> ModelVerdict:
        """Blocking (~0.1 s of CPU here): callers use a worker thread."""
        started = time.thread_time()
        probability = self.model.probability(audio)
        cpu_ms = (time.thread_time() - started) * 1000
        return ModelVerdict(probability >= self.settings.threshold, probability, cpu_ms)


def unfinished(text: str, awaiting: Awaiting | None) -> bool:
    """Whether the words say more is coming: they end in a word a sentence does not end
    with or in a question's verb and subject ("how much do I"), or (no question pending)
    they are a transfer still lacking amount or receiver, or ending in a small number that
    may yet grow, or a send verb and a name alone."""
    plain = _plain(text)
    words = plain.split()
    if not words or words[-1] in HANGING_WORDS or HANGING_QUESTION.search(plain):
        return True
    if awaiting is not None:
        return False
    meaning = rules.parse(text)
    if meaning.intent != "send_money":
        return meaning.intent == "unknown" and rules.begins_a_transfer(text)
    if meaning.amount is None or meaning.receiver is None:
        return True
    said_last = rules.normalise(text).split()[-1]
    return said_last.replace(".", "", 1).isdigit() and meaning.amount < GROWING_BELOW


def ends_in_name(text: str, names: list[str]) -> bool:
    """Whether the last word of `text` is one of `names` (the user's contacts)."""
    words = _plain(text).split()
    return bool(words) and words[-1] in {_plain(name) for name in names}


def is_backchannel(text: str, awaiting: Awaiting | None) -> bool:
    """Whether `text`, said over the assistant, only acknowledges it ("mm-hmm", "okay").
    Empty text (no words heard) counts too. During a yes/no question, "yeah" is an answer."""
    words = _plain(text).replace("-", " ").split()
    if awaiting in YES_NO_QUESTIONS:
        return not words
    return all(word in BACKCHANNEL_WORDS or HUMMING.fullmatch(word) for word in words)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())
