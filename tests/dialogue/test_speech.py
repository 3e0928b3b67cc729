"""Amounts on screen in Indian digit grouping, aloud in lakhs and crores."""

import pytest

from dialogue.speech import aloud, indian_grouping, indian_words, speakable, spoken_amount


@pytest.mark.parametrize(
    ("number", "grouped", "words"),
    [
        (500, "500", "five hundred"),
        (1500, "1,500", "one thousand five hundred"),
        (10000, "10,000", "ten thousand"),
        (150000, "1,50,000", "one lakh fifty thousand"),
        (250000, "2,50,000", "two lakh fifty thousand"),
        (12000000, "1,20,00,000", "one crore twenty lakh"),
        (1234567, "12,34,567", "twelve lakh thirty four thousand five hundred sixty seven"),
    ],
)
def test_indian_grouping_and_words(number: int, grouped: str, words: str) -> None:
    assert indian_grouping(number) == grouped
    assert indian_words(number) == words


def test_conversation_replies_group_and_speech_says_lakhs() -> None:
    shown = speakable("Send ₹150000 to Ravi? Your balance is ₹10.50.")
    assert shown == "Send 1,50,000 rupees to Ravi? Your balance is 10 rupees 50 paise."
    assert aloud(shown) == (
        "Send one lakh fifty thousand rupees to Ravi? Your balance is ten rupees fifty paise."
    )
    assert spoken_amount(100) == "1 rupee" and aloud("1 rupee") == "one rupee"


def test_other_numbers_are_left_as_they_are() -> None:
    assert aloud("Your last 5 transactions, 2,000 steps") == "Your last 5 transactions, 2,000 steps"
