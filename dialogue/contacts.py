"""Finding the contact a person meant: spelling slips and sound-alikes ("rabi" → Ravi).

Speech-to-text writes names as it hears them, so an exact alias match is not enough.
A spoken name matches a contact when it is the alias, a common word for the same
relation ("mum" → mom), or sounds the same and is clearly closer to that alias than to
any other. When two contacts are equally close, nobody is chosen: a wrong guess would
send money to the wrong person.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from banking import ContactEntry

RELATION_WORDS = {
    "mom": ("mum", "mummy", "mommy", "mother", "ma", "amma", "maa"),
    "dad": ("father", "papa", "daddy", "pa", "appa"),
}
# Words an answer to "Who should I send it to?" may hold besides the name.
NOT_A_NAME = frozenset(
    "a actually and i i'm it it's its make me mean meant my no oh ok okay please send "
    "sorry that the to uh um yes instead him her them is of for money rupees wait rather "
    "hmm cancel stop don't dont not never nope nah thanks forget mind".split()
)
MIN_SIMILARITY = 0.6
MIN_MARGIN = 0.15
# Letters that sound alike in names as speech-to-text spells them.
SOUND_CLASSES = str.maketrans("bvwpfkqcgjzsdtmn", "bbbbbkkkkjjsttmn")
VOWEL_CLASSES = str.maketrans("aeiyou", "AIIIOO")


@dataclass(frozen=True)
class ContactMatch:
    contact: ContactEntry
    # False when the name was only spelled alike: a conversation asks "Did you mean ...?".
    sure: bool


def find_contact(spoken: str, contacts: list[ContactEntry]) -> ContactEntry | None:
    match = match_contact(spoken, contacts)
    return match.contact if match else None


def match_contact(spoken: str, contacts: list[ContactEntry]) -> ContactMatch | None:
    """The contact meant: sure for an alias, relation word or sound-alike; else a guess."""
    name = re.sub(r"^(?:my|to)\s+", "", spoken.strip().lower())
    if not name:
        return None
    by_alias = {contact.alias: contact for contact in contacts}
    for word in (name, name.split()[0]):
        if word in by_alias:
            return ContactMatch(by_alias[word], sure=True)
        for alias, words in RELATION_WORDS.items():
            if word in words and alias in by_alias:
                return ContactMatch(by_alias[alias], sure=True)
    return _closest(name.split()[0], contacts)


def name_words(heard: str | None) -> str | None:
    """The words that may be a name ("actually", "it" and the like left out)."""
    words = [word for word in (heard or "").split() if word not in NOT_A_NAME]
    return " ".join(words) or None


def name_in_answer(text: str, contacts: list[ContactEntry]) -> str | None:
    """The name in an answer like "it's for mum": a contact's, else one or two words."""
    words = (name_words(" ".join(re.findall(r"[a-z']+", text.lower()))) or "").split()
    found = [word for word in words if match_contact(word, contacts)]
    if found:
        return found[0]
    return " ".join(words) if 0 < len(words) <= 2 and not re.search(r"\d", text) else None


def surely_a_contact(name: str | None, contacts: list[ContactEntry]) -> bool:
    """A name that surely is one of the contacts ("ravi", "mum"), not just close to one."""
    match = None if name is None else match_contact(name, contacts)
    return match is not None and match.sure


def sounding_like(alias: str, names: Iterable[str], count: int) -> list[str]:
    """The `count` of `names` nearest to `alias` in spelling and sound."""

    def nearness(name: str) -> float:
        sound = SequenceMatcher(None, _sound(name.lower()), _sound(alias)).ratio()
        return sound + SequenceMatcher(None, name.lower(), alias).ratio()

    return sorted(names, key=nearness, reverse=True)[:count]


def _closest(word: str, contacts: list[ContactEntry]) -> ContactMatch | None:
    scored = sorted(
        ((_similarity(word, contact.alias), contact) for contact in contacts),
        key=lambda pair: pair[0],
        reverse=True,
    )
    if not scored or scored[0][0] < MIN_SIMILARITY:
        return None
    if len(scored) > 1 and scored[0][0] - scored[1][0] < MIN_MARGIN:
        return None
    best = scored[0][1]
    return ContactMatch(best, sure=_sound(word) == _sound(best.alias))


def _similarity(heard: str, alias: str) -> float:
    """Spelling similarity, raised to at least 0.8 when the two sound the same."""
    spelled = SequenceMatcher(None, heard, alias).ratio()
    return max(spelled, 0.8) if _sound(heard) == _sound(alias) else spelled


def _sound(word: str) -> str:
    """A rough sound key: open, front and back vowels, consonant classes; no h, end e, repeats."""
    letters = re.sub(r"[^a-z]", "", word)
    if len(letters) > 3:
        letters = letters.removesuffix("e")
    key = letters.replace("h", "").translate(SOUND_CLASSES).translate(VOWEL_CLASSES)
    return re.sub(r"(.)\1+", r"\1", key)
