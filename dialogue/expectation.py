"""What the answer to the conversation's waiting question can be, for a recogniser.

After "Who should I send it to?" the answer is one of the user's contacts; after "Send
500 rupees to Ravi? Please say yes" it is yes, no or cancel; after "Did you mean Ravi?"
either. A speech recogniser that knows this can check a doubtful transcript against
the few things the person can have said (voice/answers.py) instead of passing on a
mishearing. Amounts are an open set: their question has no closed list, only the check
that the transcript reads as an amount.
"""

import re
from dataclasses import dataclass

from banking import ContactEntry
from dialogue.contacts import match_contact, name_in_answer, sounding_like, surely_a_contact
from dialogue.conversation import Awaiting
from nlu import rules
from nlu.numbers import parse_money

# The common short ways of each, as the speech model writes them: "go ahead" said is
# scored as "Go ahead.", not as "Yes.". Each phrase costs a forced decoding (~8 ms here).
YES_NO = dict.fromkeys(
    ("Yes.", "Yeah.", "Yes, please.", "Sure.", "Okay.", "Go ahead.", "Do it.", "Confirm."), "affirm"
)
YES_NO |= dict.fromkeys(("No.", "Nope."), "deny")
YES_NO |= dict.fromkeys(("Cancel.", "Cancel it.", "Stop."), "cancel")
ACTS = ("affirm", "deny", "cancel")
# Given names that are no contact of the user. Prompted with the contact names, a speech
# model may write one of them for another name said ("Robbie" heard as "Ravi"): only such a
# name scoring as well on the audio shows it. Common Indian and English names, chosen
# without regard to any user's contacts.
OTHER_NAMES = (
    "Rahul Raj Rohan Rohit Ramesh Rakesh Raju Amit Anil Arjun Priya Pooja Neha Anjali Sunita "
    "Suresh Mahesh Manish Meena Mohan Deepak Vijay Vikram Kiran Kavita Sanjay Sita Gita Jaya "
    "Jay Joy Robbie Rob Ray Jean Joan Jan Jenny Jack Joe Mark Mick Mack Max Mia Molly Tom Sam "
    "Ben Dan Dave Lucy Emma Anna Paul Pete Kate Mary"
).split()
# How many of them, the nearest in spelling and sound, a contact's name is heard beside
# (each costs the speech model a forced decoding, about 8 ms here).
RIVAL_NAMES = 6
# Spoken forms of a relation a recogniser listens for besides the contact's own label.
SPOKEN_RELATIONS = {"mom": ("Mum", "Mother"), "dad": ("Father", "Papa")}
# An answer of more words than this is a sentence of its own ("no, send it to Jane
# instead", "what's my balance"): left to the open transcript and the NLU.
MAX_ANSWER_WORDS = 3


@dataclass(frozen=True)
class Expectation:
    """The question a conversation waits on and the phrases that answer it, as said."""

    awaiting: Awaiting
    # Each phrase as the speech model writes it, with what it means (a contact's alias,
    # or affirm/deny/cancel): "Mum." and "To Mom." mean the same contact as "Mom.".
    meanings: dict[str, str]
    contacts: tuple[ContactEntry, ...]

    @property
    def phrases(self) -> tuple[str, ...]:
        return tuple(self.meanings)

    def meaning(self, phrase: str) -> str:
        return self.meanings[phrase]

    def is_contact(self, phrase: str) -> bool:
        return self.meanings[phrase] not in YES_NO.values()

    def contact_named(self, text: str) -> str | None:
        """The alias of the contact a bare answer surely names ("Ravi.", "to mum"), if any."""
        if self.awaiting not in ("receiver", "receiver_confirmation"):
            return None
        if len(text.split()) > MAX_ANSWER_WORDS:
            return None
        contacts = list(self.contacts)
        name = name_in_answer(text, contacts)
        match = None if name is None else match_contact(name, contacts)
        return match.contact.alias if match is not None and match.sure else None

    def others_like(self, alias: str) -> list[str]:
        """Phrases of names that are no contact and sound like the contact `alias`."""
        return [f"{name}." for name in self._names_like(alias)]

    def said_otherwise(self, text: str, alias: str) -> list[str]:
        """`text` with the contact's name in it replaced by each name that is no contact and
        sounds like it ("It's for Jane." → "It's for Jean."): the words around the name are
        scored alike, so only the name tells them apart."""
        name = name_in_answer(text, list(self.contacts))
        said = None if name is None else re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE)
        if said is None:
            return []
        return [
            text[: said.start()] + other + text[said.end() :] for other in self._names_like(alias)
        ]

    def _names_like(self, alias: str) -> list[str]:
        labels = {contact.label for contact in self.contacts}
        others = [name for name in OTHER_NAMES if name not in labels]
        return sounding_like(alias, others, RIVAL_NAMES)

    def fits(self, text: str) -> bool:
        """Whether an open transcript already is an answer the question can take, or is
        too long to be a bare answer: then it is passed on as heard."""
        if len(text.split()) > MAX_ANSWER_WORDS:
            return True
        contacts = list(self.contacts)
        names = self.awaiting in ("receiver", "receiver_confirmation")
        if names and surely_a_contact(name_in_answer(text, contacts), contacts):
            return True
        acts = self.awaiting in ("receiver_confirmation", "confirmation", "password")
        if acts and rules.parse(text).intent in ACTS:
            return True
        if self.awaiting == "amount":
            return parse_money(text) is not None or rules.parse(text).intent in ACTS
        return self.awaiting == "password"


def expectation(awaiting: Awaiting | None, contacts: list[ContactEntry]) -> Expectation | None:
    """What can answer the question the conversation waits on; None when it waits on none."""
    if awaiting is None:
        return None
    names: dict[str, str] = {}
    for contact in contacts:
        for said in (contact.label, *SPOKEN_RELATIONS.get(contact.alias, ())):
            names |= {f"{said}.": contact.alias, f"To {said}.": contact.alias}
    meanings = {
        "receiver": names,
        "receiver_confirmation": YES_NO | names,
        "confirmation": YES_NO,
        "amount": {},
        "password": {},
    }[awaiting]
    return Expectation(awaiting, meanings, tuple(contacts))
