"""The deterministic NLU stage: documented trigger phrases and the ways people say them."""

from decimal import Decimal

import pytest

from nlu.rules import about_own_money, between_own_accounts, parse


@pytest.mark.parametrize(
    "text",
    [
        "Check my balance",
        "What's my balance?",
        "How much money do I have?",
        "Show my account balance",
        "um what is my balance please",
        "could you tell me how much money do i have",
        "BALANCE",
        "can I afford a new bike",
        "do i have enough money in my account for a holiday",
        "is there enough in my account to cover rent",
    ],
)
def test_balance_phrases(text: str) -> None:
    result = parse(text)
    assert (result.intent, result.confidence, result.source) == ("check_balance", 0.95, "rules")


@pytest.mark.parametrize(
    ("text", "amount", "receiver"),
    [
        ("Send 500 to Ravi", 500, "ravi"),
        ("Transfer 1000 to John", 1000, "john"),
        ("Pay 200 to Jane", 200, "jane"),
        ("Give 300 to Mike", 300, "mike"),
        ("send two hundred and fifty rupees to ravi", 250, "ravi"),
        ("transfer one thousand two hundred to mom", 1200, "mom"),
        ("pay fifteen hundred to jane", 1500, "jane"),
        ("Send 1,200 to Mike", 1200, "mike"),
        ("send ₹500 to ravi", 500, "ravi"),
        ("send rs 500 to ravi", 500, "ravi"),
        ("send Rs.500 to Ravi", 500, "ravi"),
        ("send 500 rupees to RAVI", 500, "ravi"),
        ("send 5k to mom", 5000, "mom"),
        ("pay jane 1200", 1200, "jane"),
        ("um could you please send 500 to my mom", 500, "mom"),
        ("i want to send 750 to ravi kumar", 750, "ravi kumar"),
        ("send 500 rupees and fifty paise to ravi", Decimal("500.50"), "ravi"),
        ("send 10.25 to jane now", Decimal("10.25"), "jane"),
        ("send money to ravi", None, "ravi"),
        ("send 500", 500, None),
    ],
)
def test_send_money_phrases(text: str, amount, receiver) -> None:
    result = parse(text)
    assert result.intent == "send_money"
    assert result.amount == (None if amount is None else Decimal(amount))
    assert result.receiver == receiver
    assert result.confidence == 0.92


@pytest.mark.parametrize(
    ("text", "count", "confidence"),
    [
        ("Show my transactions", None, 0.9),
        ("Show recent transactions", None, 0.9),
        ("Show last 5 transactions", 5, 0.92),
        ("List previous 10 transactions", 10, 0.92),
        ("What are my last 3 transactions?", 3, 0.92),
        ("show me the last three transactions", 3, 0.92),
        ("read my previous ten transactions please", 10, 0.92),
        ("what was my last transaction", 1, 0.92),
        ("show my transfer history", None, 0.9),
        ("give me my statement", None, 0.9),
    ],
)
def test_history_phrases(text: str, count: int | None, confidence: float) -> None:
    result = parse(text)
    assert (result.intent, result.transaction_count, result.confidence) == (
        "transaction_history",
        count,
        confidence,
    )


@pytest.mark.parametrize(
    "text",
    [
        "don't send 500 to ravi",
        "do not transfer money to mom",
        "do something with my money",
        "show my balance and my transactions",
        "what's the weather like",
        "do i have enough points for a free flight",
        "how much can i afford to borrow",
        "",
        "...",
    ],
)
def test_unsure_sentences_are_unknown_with_low_confidence(text: str) -> None:
    result = parse(text)
    assert result.intent == "unknown"
    assert result.confidence < 0.6


def test_two_amounts_make_the_amount_unclear() -> None:
    result = parse("send 500 to ravi 200")
    assert result.intent == "send_money"
    assert result.amount is None
    assert result.confidence < 0.6


@pytest.mark.parametrize(
    ("text", "act"),
    [
        ("Yes", "affirm"),
        ("ok go ahead", "affirm"),
        ("No.", "deny"),
        ("never mind", "cancel"),
        ("Hello!", "greet"),
        ("bye bye", "goodbye"),
        ("what can you do?", "help"),
    ],
)
def test_dialogue_acts(text: str, act: str) -> None:
    result = parse(text)
    assert (result.intent, result.confidence) == (act, 0.95)


@pytest.mark.parametrize(
    "text",
    [
        "there is a transaction I don't recognise",
        "reverse my transaction",
        "I was charged twice for one payment",
        "this payment is wrong",
        "I want to dispute a charge",
        "there's a strange withdrawal on my statement",
        "a debit of 900 that was not me",
        "my wallet got hacked and the money went out",
        "a payment i never authorized left my account",
        "they charged me even though the payment was declined",
        "somebody moved money out of my account without my consent",
        "bank ne galat paisa kata",
    ],
)
def test_complaints_about_a_transaction_are_problems_not_history(text: str) -> None:
    result = parse(text)
    assert (result.intent, result.confidence) == ("report_problem", 0.9)


@pytest.mark.parametrize(
    "text",
    ["show my transactions", "my last 3 transactions", "give me my previous 2 transactions"],
)
def test_asking_for_transactions_is_still_history(text: str) -> None:
    assert parse(text).intent == "transaction_history"


@pytest.mark.parametrize(
    ("text", "own"),
    [
        ("transfer 500 from my savings to my checking account", True),
        ("move money between my accounts", True),
        ("send 500 to my other account", True),
        ("put 2000 into my new account", True),
        ("send 1500 to myself", True),
        ("move 3000 into my hdfc account", True),
        ("transfer 700 to my nro account", True),
        ("send it to my axis account, that one is mine too", True),
        ("send 500 to ravi", False),
        ("transfer 200 from my account to mom", False),
    ],
)
def test_transfers_between_own_accounts(text: str, own: bool) -> None:
    assert between_own_accounts(text) is own


@pytest.mark.parametrize(
    "text",
    [
        "what does minimum balance mean",
        "what is a zero balance savings account",
        "explain what a passbook entry is",
        "is it safe to transfer money using upi",
        "are there any charges for sending money abroad",
        "tell me the history of the reserve bank",
        "send a birthday message to mom",
        "send my location to ravi",
        "pay my car insurance premium",
        "what's my fastag balance",
        "how do i send money to a friend",
        "how much does arjun owe me",
        "ask meena to send me 800",
    ],
)
def test_questions_about_banking_in_general_are_surely_no_request(text: str) -> None:
    """Read surely as unknown, so that no later stage reads a balance or a transfer in."""
    result = parse(text)
    assert (result.intent, result.confidence) == ("unknown", 0.9)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("do i have enough for the water bill", "check_balance"),
        ("will i have enough to cover rent", "check_balance"),
        ("acct bal pls", "check_balance"),
        ("has my salary been credited yet", "transaction_history"),
        ("did i get any money from dad", "transaction_history"),
        ("when did i last send money to priya", "transaction_history"),
        ("how much did i pay in rent this month", "check_spending"),
        ("i paid the wrong person by accident", "report_problem"),
        ("my transfer failed but the money is gone", "report_problem"),
        ("someone took 200 rupees i didnt authorise", "report_problem"),
        ("did kiran pay me back yet", "transaction_history"),
        ("has the money from my landlord come through", "transaction_history"),
        ("what went out of my account today", "transaction_history"),
        ("kitna kharcha kiya maine last month", "check_spending"),
        ("what is the balance on my savings account", "check_balance"),
        ("tell me the balance, my glasses are broken", "check_balance"),
        ("is my account overdrawn", "check_balance"),
        ("mere account mein kitne rupaye hai", "check_balance"),
        ("did i send dad the money already", "transaction_history"),
        ("has my payment to priya gone through", "transaction_history"),
        ("rent ka paisa aaya kya", "transaction_history"),
        ("were there any cash deposits last week", "transaction_history"),
        ("the rent from my tenant came into my account?", "transaction_history"),
        ("papa ko 2000 bhejo", "send_money"),
        ("bhej do paise didi ko", "send_money"),
        ("is mahine kitne paise uda diye", "check_spending"),
        # No request of ours: money owed or collected, news of money come in, other
        # balances.
        ("raise a payment request to neha for 450", "unknown"),
        ("collect the 2000 from arjun", "unknown"),
        ("i lent my cousin 5000", "unknown"),
        ("dad sent me 1000 for my birthday", "unknown"),
        ("what's the balance in my nps account", "unknown"),
        ("balance of my starbucks gift card", "unknown"),
        ("paytm me kitna paisa hai", "unknown"),
        # A transfer said with its noun; the status of one; a statement named by its month.
        ("please do one transfer of 3000 to Kavya", "send_money"),
        ("i'd like to make a payment to arjun", "send_money"),
        ("has my transfer to neha been completed", "transaction_history"),
        ("did the 500 i sent arjun reach him", "transaction_history"),
        ("is the money from my landlord in yet", "transaction_history"),
        ("send me last week's statement", "transaction_history"),
        ("show me everything i paid yesterday", "transaction_history"),
        ("my expense summary for june", "check_spending"),
        # Fraud or a double debit said of the account; undoing a payment.
        ("somebody hacked my account", "report_problem"),
        ("there was a double debit for my groceries", "report_problem"),
        ("undo the payment i made to the plumber", "report_problem"),
        # Other senses: a body's or a film's balance, time spent, regards sent, news.
        ("after the surgery i keep losing my balance", "unknown"),
        ("the album strikes a nice balance of old and new", "unknown"),
        ("we spent the whole afternoon at the beach", "unknown"),
        ("send my love to your parents", "unknown"),
        ("my son transferred to another school", "unknown"),
        ("i read that card transactions doubled this year", "unknown"),
        ("what would happen if the bank shut down", "unknown"),
        ("my husband spends a lot on gadgets", "unknown"),
    ],
)
def test_wordings_beyond_the_keywords(text: str, intent: str) -> None:
    assert parse(text).intent == intent


@pytest.mark.parametrize(
    ("text", "own"),
    [
        ("how much money is left in my account", True),
        ("balance please", True),
        ("show the last five payments", True),
        ("what is the usual minimum balance for savings accounts", False),
        ("how long do transfers to other banks take", False),
        ("what time is it", False),
    ],
)
def test_whether_a_sentence_is_about_the_users_own_money(text: str, own: bool) -> None:
    """Learned stages need a higher confidence to read a banking request into one that is not."""
    assert about_own_money(text) is own
