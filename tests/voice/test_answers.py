"""Bare answers checked against what the conversation waits for (no models: the ranking
on real audio is covered by tests/voice/test_spoken_answers.py)."""

import numpy as np
import pytest

from banking import ContactEntry
from dialogue.expectation import YES_NO, expectation
from nlu import rules
from voice.answers import AnswerSettings, amount_only, choose, recognise, repair_amount

CONTACTS = [ContactEntry(alias, user) for alias, user in (("ravi", 3), ("jane", 2), ("mom", 4))]
SETTINGS = AnswerSettings(enabled=True, min_logprob=-8.0, min_margin=2.0, doubt_below=-9.0)
AUDIO = np.zeros(16000, dtype=np.float32)


def ranker(scores: dict[str, float]):
    return lambda audio, phrases: [scores.get(phrase, -20.0) for phrase in phrases]


@pytest.mark.parametrize(
    ("heard", "repaired"),
    [
        ("2.5 like.", "2.5 lakh."),
        ("1 lag 50,000.", "1 lakh 50,000."),
        ("1, 50,000.", "1,50,000."),
        ("1.50.000.", "150000."),
        ("15th hundred.", "15 hundred."),
        ("1.2 core.", "1.2 crore."),
        ("Half a like.", "Half a lakh."),
        ("300.", "300."),
        ("700 and 50.", "750."),
        ("2.5,000.", "2.5 thousand."),
        ("100 and 500.", "100 and 500."),
    ],
)
def test_whispers_slips_on_indian_amounts_are_put_right(heard: str, repaired: str) -> None:
    assert repair_amount(heard) == repaired


@pytest.mark.parametrize("heard", ["One back.", "300 100.", "300 hundred."])
def test_an_amount_with_a_stray_word_or_said_twice_is_doubtful(heard: str) -> None:
    """ "300 100." and "300 hundred." are whisper's "three hundred" heard twice over: taken
    as written they would move 300 rupees with 100 after it, or 30,000."""
    assert not amount_only(heard)
    expecting = expectation("amount", CONTACTS)
    assert recognise(heard, AUDIO, expecting, ranker({}), SETTINGS).how == "doubtful"


def test_a_put_right_amount_among_stray_words_is_doubtful_however_long() -> None:
    """ "one and a half lakh" heard "Well then the half lag.": put right, it reads as half a
    lakh; taken, it would move 50,000 instead of 1,50,000."""
    expecting = expectation("amount", CONTACTS)
    heard = recognise("Well then the half lag.", AUDIO, expecting, ranker({}), SETTINGS)
    assert (heard.text, heard.how) == ("Well then the half lakh.", "doubtful")
    sentence = recognise("No, make it two hundred instead.", AUDIO, expecting, ranker({}), SETTINGS)
    assert sentence.how == "open"


@pytest.mark.parametrize("heard", ["1 lakh 50,000 rupees.", "15 hundred.", "5 rupees 50 paise."])
def test_one_amount_is_taken(heard: str) -> None:
    assert amount_only(heard)


def test_a_contact_ranked_from_a_misheard_answer_is_asked_about() -> None:
    expecting = expectation("receiver", CONTACTS)
    heard = recognise("Tomorrow", AUDIO, expecting, ranker({"To Mom.": -6.0}), SETTINGS)
    assert (heard.text, heard.how) == ("To Mom.", "doubtful")


def test_two_close_contacts_choose_none() -> None:
    expecting = expectation("receiver", CONTACTS)
    assert expecting is not None
    scores = {phrase: -20.0 for phrase in expecting.phrases} | {"Ravi.": -6.0, "Jane.": -7.0}
    assert choose(scores, expecting.meaning, SETTINGS) == ("Ravi.", False)
    heard = recognise("Rainy.", AUDIO, expecting, ranker(scores), SETTINGS)
    assert (heard.text, heard.how) == ("Rainy.", "open")


def test_a_named_contact_the_audio_does_not_bear_out_is_doubtful() -> None:
    expecting = expectation("receiver", CONTACTS)
    assert recognise("Ravi.", AUDIO, expecting, ranker({"Ravi.": -12.0}), SETTINGS).how == (
        "doubtful"
    )
    assert recognise("Ravi.", AUDIO, expecting, ranker({"Ravi.": -3.0}), SETTINGS).how == "open"


def test_a_contact_named_for_another_name_said_is_doubtful() -> None:
    """Prompted with the contact names, the speech model wrote "Ravi." for "Robbie": the
    audio bears out "Robbie." better, so Ravi is asked about, likely as "Ravi." is."""
    expecting = expectation("receiver", CONTACTS)
    assert expecting is not None and "Robbie." in expecting.others_like("ravi")
    scores = ranker({"Ravi.": -4.0, "Robbie.": -3.0})
    assert recognise("Ravi.", AUDIO, expecting, scores, SETTINGS).how == "doubtful"


@pytest.mark.parametrize(
    ("said", "rival", "how"),
    [(-10.0, -13.0, "open"), (-10.0, -11.0, "doubtful"), (-11.5, -20.0, "doubtful")],
)
def test_a_contact_a_little_unlikely_is_taken_only_clearly_ahead(
    said: float, rival: float, how: str
) -> None:
    """Under `doubt_below` (-9) by at most `min_margin` (2), a contact's phrase is taken
    when it is `min_margin` likelier than every name like it that is no contact."""
    expecting = expectation("receiver", CONTACTS)
    assert expecting is not None
    scores = {phrase: rival for phrase in expecting.others_like("ravi")} | {"Ravi.": said}
    assert recognise("Ravi.", AUDIO, expecting, ranker(scores), SETTINGS).how == how


def test_a_contacts_own_name_is_no_rival_to_it() -> None:
    """A user whose contact is called Ray hears "Ray." as that contact, not as a rival."""
    contacts = [*CONTACTS, ContactEntry("ray", 6)]
    expecting = expectation("receiver", contacts)
    assert expecting is not None and "Ray." not in expecting.others_like("ravi")


def test_a_yes_ranked_clearly_is_taken() -> None:
    expecting = expectation("confirmation", CONTACTS)
    heard = recognise("Console.", AUDIO, expecting, ranker({"Cancel.": -5.0}), SETTINGS)
    assert (heard.text, heard.how) == ("Cancel.", "ranked")


def test_go_ahead_is_heard_as_itself_and_read_as_a_yes() -> None:
    """ "go ahead" misheard ("Go head.") ranks as its own phrase, and each phrase a yes/no
    is ranked against reads as what it means."""
    expecting = expectation("confirmation", CONTACTS)
    heard = recognise("Go head.", AUDIO, expecting, ranker({"Go ahead.": -4.0}), SETTINGS)
    assert (heard.text, heard.how) == ("Go ahead.", "ranked")
    assert {phrase: rules.parse(phrase).intent for phrase in YES_NO} == YES_NO


def test_a_contact_named_among_other_words_is_weighed_in_those_words() -> None:
    """ "It's for Jane." scores low as the bare "Jane."; beside the same words with a name
    like Jane's in its place, the audio bears it out, or shows another name said."""
    expecting = expectation("receiver", CONTACTS)
    assert expecting is not None and "It's for Jean." in expecting.said_otherwise(
        "It's for Jane.", "jane"
    )
    borne_out = ranker({"Jane.": -14.0, "It's for Jane.": -3.4, "It's for Jean.": -10.6})
    assert recognise("It's for Jane.", AUDIO, expecting, borne_out, SETTINGS).how == "open"
    another = ranker({"It's for Ravi.": -6.0, "It's for Robbie.": -4.0})
    assert recognise("It's for Ravi.", AUDIO, expecting, another, SETTINGS).how == "doubtful"
