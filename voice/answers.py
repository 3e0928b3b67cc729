"""Bare answers heard as what they can be: a contact, yes or no, an amount.

A one-word answer gives the speech model little to go on: "Mom" comes out "Tomorrow",
"one lakh" comes out "1 like". When the conversation waits on a question
(dialogue/expectation.py says which answers it can take), a transcript that is no such
answer is checked against them: the speech model scores each expected phrase on the
same audio (`SpeechToText.rank`). A yes/no/cancel that is likely enough and clearly ahead
of the others is taken; a contact found so is asked about ("Did you mean Mom?"), since
another name said ("Robbie") can rank as a contact ("Ravi") as well as that contact's
own name misheard can. A transcript that names a contact is checked too: prompted with the
contact names, the model may write one for another name said ("Rahul" or "Robbie" heard
as "Ravi"). The contact's phrases are scored beside names that are no contact and sound
like it (`Expectation.others_like`); a contact that is unlikely on the audio, or less
likely than such a name, is asked about. Otherwise the transcript goes on as heard and the
conversation asks again: a doubtful answer never silently becomes another contact or
amount.

Amounts are no closed set; a transcript read while an amount is awaited has the speech
model's usual slips of Indian amounts put right ("2.5 like" → "2.5 lakh", "1, 50,000" →
"1,50,000").
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dialogue import Expectation
from nlu.numbers import (
    MAJOR_CURRENCY,
    MINOR_CURRENCY,
    SCALES,
    TEENS,
    TENS,
    UNITS,
    normalise_numbers,
    parse_money,
)

# How whisper writes "lakh" and "crore" when it does not know them.
ORDINAL_SLIPS = re.compile(r"\b(\d+)(?:st|nd|rd|th)(?= (?:hundred|thousand|lakh|crore)\b)")
LAKH_SLIPS = re.compile(
    r"(?:(?<=\d )|(?<=half a )|(?<=half ))(?:lakhs?|lacs?|lack|lag|legs?|like|luck|lock|lek)\b",
    re.IGNORECASE,
)
CRORE_SLIPS = re.compile(r"(?<=\d )(?:crores?|core|crow|chrome|kroner?)\b", re.IGNORECASE)
# Indian grouping split by a stray space ("1, 50,000") or written with dots ("1.50.000").
SPLIT_GROUPING = re.compile(r"\b(\d{1,2}), (\d{2}(?:,\d{2})*,\d{3})\b")
DOTTED_GROUPING = re.compile(r"\b\d{1,3}(?:\.\d{2})*\.\d{3}\b")
# "seven hundred and fifty" written "700 and 50"; "two and a half thousand" written "2.5,000".
HUNDREDS_AND = re.compile(r"\b([1-9]\d*00) and ([1-9]\d?)\b")
DECIMAL_THOUSANDS = re.compile(r"\b(\d+\.\d+),000\b")
NUMBER = re.compile(r"\d+(?:\.\d+)?")

# An amount's answer of more words is a sentence ("no, make it two hundred"), for the NLU.
MAX_ANSWER_WORDS = 4
# Words an answer to "How much?" may hold besides its digits; any other word ("One back.")
# makes the amount doubtful: the conversation asks again rather than take "1".
AMOUNT_WORDS = UNITS.keys() | TEENS.keys() | TENS.keys() | SCALES.keys() | MAJOR_CURRENCY
AMOUNT_WORDS |= MINOR_CURRENCY | {"hundred", "point", "and", "a", "half", "k", "lakhs", "crores"}
AMOUNT_WORDS |= {"only", "just", "make", "it", "send", "please", "um", "uh", "er", "so"}

Ranker = Callable[[np.ndarray, Sequence[str]], list[float]]


class AnswerSettings(BaseModel):
    """Values come from config.yaml (voice.answers), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    # The likeliest expected phrase is taken when its log-probability (summed over its
    # tokens) is at least this ...
    min_logprob: float = Field(le=0.0)
    # ... and at least this far above the next phrase that means something else.
    min_margin: float = Field(ge=0.0)
    # A transcript naming a contact whose phrase scores below this on the audio is doubtful,
    # or scores less than a name that is no contact and sounds like it; at most min_margin
    # below this is enough when min_margin ahead of every such name.
    doubt_below: float = Field(le=0.0)


@dataclass(frozen=True)
class Heard:
    text: str
    # "open": the transcript as heard; "repaired": an amount's slips put right;
    # "ranked": the yes/no the speech model found likeliest; "doubtful": a contact's
    # name the conversation should ask about before taking it, or an amount with words
    # that are no part of an amount in it.
    how: str


def recognise(
    transcript: str,
    audio: np.ndarray,
    expecting: Expectation | None,
    rank: Ranker,
    settings: AnswerSettings,
) -> Heard:
    """What the user answered: the transcript, or the expected phrase it must have been."""
    if expecting is None or not settings.enabled or not transcript:
        return Heard(transcript, "open")
    if expecting.awaiting == "amount":
        repaired = repair_amount(transcript)
        # A sentence for the NLU is longer, unless the words needed putting right: then
        # stray words beside the amount ("Well then the half lag." for "one and a half
        # lakh") mean it was misheard.
        short = len(repaired.split()) <= MAX_ANSWER_WORDS or repaired != transcript
        if short and parse_money(repaired) is not None and not amount_only(repaired):
            return Heard(repaired, "doubtful")
        return Heard(repaired, "repaired" if repaired != transcript else "open")
    named = expecting.contact_named(transcript)
    if not expecting.phrases or (expecting.fits(transcript) and named is None):
        return Heard(transcript, "open")
    if named is not None:  # the transcript names a contact: does the audio say so?
        own = [phrase for phrase in expecting.phrases if expecting.meaning(phrase) == named]
        rivals = expecting.others_like(named)
        if _bare(transcript) not in {_bare(phrase) for phrase in own}:  # "It's for Jane."
            own, rivals = [*own, transcript], rivals + expecting.said_otherwise(transcript, named)
        heard = rank(audio, own + rivals)
        said, against = max(heard[: len(own)]), max(heard[len(own) :], default=-math.inf)
        sure = borne_out(said, against, settings)
        return Heard(transcript, "open" if sure else "doubtful")
    scores = dict(zip(expecting.phrases, rank(audio, expecting.phrases), strict=True))
    chosen = choose(scores, expecting.meaning, settings)
    if chosen is None:
        return Heard(transcript, "open")
    phrase, sure = chosen
    if not sure:
        return Heard(transcript, "open")
    # A contact the transcript did not name is asked about: another name said ("Robbie")
    # can rank as a contact ("Ravi") as well as that contact's own name misheard can.
    return Heard(phrase, "doubtful" if expecting.is_contact(phrase) else "ranked")


def _bare(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


def borne_out(said: float, rival: float, settings: AnswerSettings) -> bool:
    """Whether a contact's phrase (scored `said` on the audio) is heard surely enough beside
    the likeliest name that is no contact (scored `rival`)."""
    if said < rival:
        return False
    if said >= settings.doubt_below:
        return True
    return (
        said >= settings.doubt_below - settings.min_margin and said - rival >= settings.min_margin
    )


def choose(
    scores: dict[str, float], meaning: Callable[[str], str], settings: AnswerSettings
) -> tuple[str, bool] | None:
    """The likeliest phrase and whether it is clearly ahead, or None if none is likely.
    Phrases of one meaning ("Mom.", "Mum.", "To Mom.") do not compete with each other:
    the margin is to the best phrase of another meaning."""
    ranked = sorted(((score, phrase) for phrase, score in scores.items()), reverse=True)
    if not ranked or ranked[0][0] < settings.min_logprob:
        return None
    best_score, best = ranked[0]
    rivals = [score for score, phrase in ranked[1:] if meaning(phrase) != meaning(best)]
    return best, not rivals or best_score - rivals[0] >= settings.min_margin


def amount_only(text: str) -> bool:
    """Whether an answer holds nothing but one amount ("1 lakh 50,000 rupees.", "5 rupees 50
    paise"). Two numbers side by side ("300 100.", "300 hundred." for "three hundred") are
    no amount a person says: the speech model heard something twice."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    numbers = NUMBER.findall(normalise_numbers(text))
    return words <= AMOUNT_WORDS and (len(numbers) <= 1 or bool(words & MINOR_CURRENCY))


def repair_amount(text: str) -> str:
    """An amount's transcript with whisper's slips on Indian amounts put right."""
    text = ORDINAL_SLIPS.sub(r"\1", text)
    text = SPLIT_GROUPING.sub(r"\1,\2", text)
    text = DOTTED_GROUPING.sub(lambda match: match[0].replace(".", ""), text)
    text = HUNDREDS_AND.sub(lambda match: str(int(match[1]) + int(match[2])), text)
    text = DECIMAL_THOUSANDS.sub(r"\1 thousand", text)
    text = LAKH_SLIPS.sub("lakh", text)
    return CRORE_SLIPS.sub("crore", text)
