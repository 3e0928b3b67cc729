"""Speech to text: faster-whisper's model, with an encoder that sees only the clip.

`WhisperModel.transcribe()` pads every clip to Whisper's 30-second window, so a 2-second
command costs the encoder as much as 30 seconds of speech. The encoder accepts shorter
input: this module computes the log-mel features of the clip plus `tail_pad_s` of
padding and runs CTranslate2's encoder and decoder on those alone (the "short" path),
about a fifth of the CPU (bench/bench_stt.py).

Whisper never saw such short windows in training and tends to start its sentence again
at the end of one ("What can you do? What can you do? What can…"). Three guards: the
decoder runs with timestamps, so it can end a segment, and with none past the window's
end; the answer is cut where it starts repeating itself to the end; and the token limit
follows the clip's length. An answer that runs into that limit without such a loop,
stutters ("Lin, Ma, Ma, Ma, Lin.") or reads out the prompt's contact names is redone on
the full 30-second window (the "full" path); if that answer is no better, there is no
text.

No text from silence or noise: a clip with no loud moment is not decoded at all; a
decoded one is dropped when the model says it heard no speech and is unsure of its
words, or when it is unsure and produced a phrase Whisper invents on silence ("Thank
you."). The prompt carries banking words and the user's contact names, which makes the
decoder prefer them ("Mike", not "might").

The model is loaded from the directory given (never downloaded) and used by one call at
a time; each call is blocking, callers run it in a worker thread.
"""

import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens
from pydantic import BaseModel, ConfigDict, Field

from voice.audio import PIPELINE_RATE

WINDOW_FRAMES = 3000  # Whisper's 30-second window, in 10 ms log-mel frames
MAX_AUDIO_S = 30.0
# Most tokens a second of speech can need (fast speech is ~4 words, ~6 tokens a second),
# plus a few for punctuation and timestamps: an answer longer than this has looped.
TOKENS_PER_S = 8
EXTRA_TOKENS = 8
# More contact names than this in one answer: the decoder is reading the prompt's list
# ("Mom, Mom, Mike, Jane, John"), not the speaker, who names one receiver.
MAX_NAMES = 2
# What Whisper says to silence, noise or music: phrases from its subtitle training data.
# Not "Thank you." or "Bye.": here they end a conversation (whisper-base, unsure, heard
# an espeak "goodbye" as "Bye.").
INVENTED_PHRASES = frozenset({"you", "thanks for watching", "thank you for watching", "so", "oh"})

Route = Literal["short", "full", "silent"]


class SttSettings(BaseModel):
    """Values come from config.yaml (voice.stt), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    cpu_threads: int = Field(ge=1)  # CTranslate2 intra-op threads
    compute_type: str  # CTranslate2 compute type: int8, int8_float32, float32, ...
    beam_size: int = Field(ge=1, le=10)
    # Silence appended to the clip for the short path: Whisper expects speech to end
    # before its window does.
    tail_pad_s: float = Field(ge=0.0, le=5.0)
    # A clip whose loudest 50 ms stays below this level (dB of full scale) is silence.
    min_level_dbfs: float = Field(le=0.0)
    # Whisper's own no-speech probability above which the text is dropped, unless the
    # words' average log-probability is at least `min_avg_logprob` (a confident reading).
    no_speech_threshold: float = Field(ge=0.0, le=1.0)
    min_avg_logprob: float = Field(le=0.0)
    # Words and phrases recognition is biased toward, shown to the decoder as sentences
    # just said, in the style wanted ("Send 500 rupees to Ravi": digits for amounts).
    # The user's contact names follow them, per call.
    vocabulary: list[str]


@dataclass(frozen=True)
class Transcript:
    text: str  # "" when nothing was said
    audio_s: float
    no_speech_prob: float  # 1.0 when the clip was too quiet to decode
    avg_logprob: float  # mean log-probability of the decoded tokens; 0.0 if none
    path: Route  # which way the text was found (silent: not decoded)
    cpu_ms: float  # process CPU time during the call (all threads)
    wall_ms: float


@dataclass(frozen=True)
class _Decoded:
    text: str
    no_speech_prob: float
    avg_logprob: float
    # Ran into the token limit without a loop to cut, or read out the contact list.
    broken: bool


class SpeechToText:
    def __init__(self, model_dir: Path, settings: SttSettings) -> None:
        for name in ("model.bin", "tokenizer.json", "config.json"):
            if not (model_dir / name).is_file():
                # WhisperModel would try to download what is missing: never.
                raise FileNotFoundError(f"speech-to-text model file {model_dir / name} is missing")
        self.settings = settings
        self._whisper = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            local_files_only=True,
        )
        multilingual = self._whisper.model.is_multilingual
        self._tokenizer = Tokenizer(
            self._whisper.hf_tokenizer, multilingual, task="transcribe", language="en"
        )
        self._suppressed = list(get_suppressed_tokens(self._tokenizer, [-1]))
        self._last_timestamp = self._tokenizer.timestamp_begin + WINDOW_FRAMES // 2
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Run the short path once, so the first real command does not pay for set-up."""
        rng = np.random.default_rng(0)
        with self._lock:
            self._decode(rng.normal(0, 0.05, PIPELINE_RATE).astype(np.float32), (), full=False)

    def transcribe(self, audio: np.ndarray, hints: Sequence[str] | None = ()) -> Transcript:
        """The words in `audio` (float32, 16 kHz, mono, at most 30 s); "" if none.

        `hints`: words likely in this utterance (the user's contact names); None: no
        prompt at all, neither names nor vocabulary (a prompted decoder may finish a
        sentence the speaker has not: "send 500 rupees to" … "Ravi").
        Raises ValueError for audio that is not such an array or holds NaN/inf.
        """
        return self._run(audio, hints, full=False)

    def transcribe_full_window(self, audio: np.ndarray, hints: Sequence[str] = ()) -> Transcript:
        """As `transcribe`, but the encoder sees the clip padded to 30 s (as the library
        does): slower, and the reference the short path is measured against."""
        return self._run(audio, hints, full=True)

    def rank(self, audio: np.ndarray, phrases: Sequence[str]) -> list[float]:
        """How likely the model finds each phrase as the whole transcript of `audio`: the
        sum of its tokens' log-probabilities, read by forced decoding on the clip's
        encoding (one encoder run for all phrases). Higher is likelier."""
        _check_audio(audio)
        if not phrases:
            return []
        features = self._features(audio, full=False)
        tokens = [self._tokenizer.encode(" " + phrase.strip()) for phrase in phrases]
        start = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        with self._lock:
            model = self._whisper.model
            encoded = np.asarray(
                model.encode(
                    ctranslate2.StorageView.from_array(np.ascontiguousarray(features[np.newaxis]))
                )
            )
            batch = np.ascontiguousarray(np.repeat(encoded, len(tokens), axis=0))
            aligned = model.align(
                ctranslate2.StorageView.from_array(batch),
                start,
                tokens,
                [features.shape[1]] * len(tokens),
            )
        return [
            float(np.sum(np.log(np.maximum(np.asarray(result.text_token_probs), 1e-12))))
            for result in aligned
        ]

    def _run(self, audio: np.ndarray, hints: Sequence[str] | None, full: bool) -> Transcript:
        _check_audio(audio)
        cpu, wall = time.process_time(), time.perf_counter()
        audio_s = len(audio) / PIPELINE_RATE
        decoded: _Decoded | None = None
        path: Route = "silent"
        if _loudest_dbfs(audio) >= self.settings.min_level_dbfs:
            with self._lock:
                decoded = self._decode(audio, hints, full)
                path = "full" if full else "short"
                if not full and decoded.broken:
                    decoded, path = self._decode(audio, hints, full=True), "full"
        text = self._accepted_text(decoded) if decoded else ""
        return Transcript(
            text=text,
            audio_s=audio_s,
            no_speech_prob=decoded.no_speech_prob if decoded else 1.0,
            avg_logprob=decoded.avg_logprob if decoded else 0.0,
            path=path,
            cpu_ms=(time.process_time() - cpu) * 1000,
            wall_ms=(time.perf_counter() - wall) * 1000,
        )

    def _decode(self, audio: np.ndarray, hints: Sequence[str] | None, full: bool) -> _Decoded:
        features = self._features(audio, full)
        encoded = self._whisper.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[np.newaxis]))
        )
        prompt = self._prompt(hints)
        max_tokens = EXTRA_TOKENS + math.ceil(TOKENS_PER_S * len(audio) / PIPELINE_RATE)
        # Timestamps on: ending a segment with a timestamp lets the model stop, where
        # without them it often starts the sentence again. None past the window's end.
        window_end = self._tokenizer.timestamp_begin + features.shape[1] // 2
        result = self._whisper.model.generate(
            encoded,
            [prompt],
            beam_size=self.settings.beam_size,
            max_length=len(prompt) + max_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[*self._suppressed, *range(window_end + 1, self._last_timestamp + 1)],
        )[0]
        tokens = result.sequences_ids[0]
        text, looped = _without_loop(self._tokenizer.decode(tokens))
        heard = _plain(text).split()
        names = {_plain(name) for name in hints or ()} & set(heard)
        return _Decoded(
            text=text,
            no_speech_prob=result.no_speech_prob,
            avg_logprob=result.scores[0] if tokens else 0.0,
            broken=(len(tokens) >= max_tokens and not looped)
            or len(names) > MAX_NAMES
            or _stutters(heard),
        )

    def _features(self, audio: np.ndarray, full: bool) -> np.ndarray:
        """Log-mel frames of the clip, then frames of value 0 up to 30 s (as the library
        pads them) or, for the short path, for `tail_pad_s` only."""
        features = self._whisper.feature_extractor(audio)[:, :WINDOW_FRAMES]
        length = (
            WINDOW_FRAMES if full else features.shape[1] + round(self.settings.tail_pad_s * 100)
        )
        length = min(WINDOW_FRAMES, length + length % 2)  # the encoder halves it: keep it even
        return np.pad(features, ((0, 0), (0, length - features.shape[1])))

    def prompt_text(self, hints: Sequence[str] = ()) -> str:
        """What the decoder is shown as the previous speech: the vocabulary, one sentence
        each, and the names in `hints`."""
        phrases = [f"{phrase.strip().rstrip('.')}." for phrase in self.settings.vocabulary]
        names = ", ".join(name.strip() for name in hints if name.strip())
        return " ".join([*phrases, *([f"Contacts: {names}."] if names else [])])

    def _prompt(self, hints: Sequence[str] | None) -> list[int]:
        """<|startofprev|> and the prompt text, then the start of the transcript."""
        if hints is None:
            return list(self._tokenizer.sot_sequence)
        tokenizer, text = self._tokenizer, self.prompt_text(hints)
        previous = [tokenizer.sot_prev, *tokenizer.encode(" " + text)] if text else []
        return [*previous, *tokenizer.sot_sequence]

    def _accepted_text(self, decoded: _Decoded) -> str:
        if decoded.broken:  # even on the full window: better asked again than misheard
            return ""
        unsure = decoded.avg_logprob < self.settings.min_avg_logprob
        if decoded.no_speech_prob > self.settings.no_speech_threshold and unsure:
            return ""
        if unsure and _plain(decoded.text) in INVENTED_PHRASES:
            return ""
        return decoded.text


def _check_audio(audio: np.ndarray) -> None:
    if not isinstance(audio, np.ndarray) or audio.dtype != np.float32 or audio.ndim != 1:
        kind = (
            f"{audio.dtype} array of shape {audio.shape}"
            if isinstance(audio, np.ndarray)
            else type(audio).__name__
        )
        raise ValueError(f"audio must be a 1-D float32 array (16 kHz mono), not a {kind}")
    if len(audio) > MAX_AUDIO_S * PIPELINE_RATE:
        raise ValueError(f"audio of {len(audio) / PIPELINE_RATE:.1f} s is over {MAX_AUDIO_S:.0f} s")
    if not np.isfinite(audio).all():
        raise ValueError("audio holds NaN or infinite samples")


def _loudest_dbfs(audio: np.ndarray, window: int = PIPELINE_RATE // 20) -> float:
    """The level of the loudest 50 ms of the clip, in dB of full scale (-inf for none)."""
    if len(audio) == 0:
        return -math.inf
    padded = np.pad(audio.astype(np.float64), (0, -len(audio) % window))
    rms = float(np.sqrt(np.mean(padded.reshape(-1, window) ** 2, axis=1)).max())
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def _without_loop(text: str) -> tuple[str, bool]:
    """The text cut where it starts repeating itself to the end, and whether it did.

    Whisper loops by starting its sentence again ("What can you do? What can you do? What
    can you") until the token limit: the words after the first round are dropped. A
    repetition in the middle ("no, no, send it") is speech and stays. The limit may cut
    the last word short ("Ravi, Ravi, R").
    """
    spoken = text.split()
    plain = [_plain(word) for word in spoken]
    for start in range(1, len(plain)):
        rest = plain[start:]
        for period in range(1, min(start, len(rest)) + 1):
            cycle = plain[start - period : start]
            *whole, last = rest
            expected = [cycle[i % period] for i in range(len(rest))]
            if whole == expected[:-1] and expected[-1].startswith(last):
                return " ".join(spoken[:start]).rstrip(",;:-"), True
    return text.strip(), False


def _stutters(words: list[str], longest: int = 3, times: int = 3) -> bool:
    """Whether a run of up to `longest` words comes `times` times in a row ("Ma, Ma, Ma")."""
    for size in range(1, longest + 1):
        for start in range(len(words) - size * times + 1):
            run = words[start : start + size]
            if all(words[start + k * size : start + (k + 1) * size] == run for k in range(times)):
                return True
    return False


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())
