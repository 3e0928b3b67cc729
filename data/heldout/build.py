"""Build the held-out NLU evaluation set, data/heldout/heldout.yaml (see README.md here).

    python data/heldout/build.py CLINC_DATA_FULL_JSON

Reads CLINC150's `test` and `oos_test` splits from clinc/oos-eval's data/data_full.json
(never used by this project before) and Banking77's train.csv from
data/third_party/banking77/. Rows are drawn with a fixed seed, so the file is reproducible;
the Banking77 rows drawn here are the ones `nlu.examples` leaves out of training.
"""

import csv
import json
import random
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SEED = 17
BANKING77 = HERE.parent / "third_party" / "banking77" / "train.csv"

CLINC_TO_OURS = {
    "balance": "check_balance",
    "transfer": "send_money",
    "transactions": "transaction_history",
    "spending_history": "check_spending",
    "report_fraud": "report_problem",
    "yes": "affirm",
    "no": "deny",
    "cancel": "cancel",
    "greeting": "greet",
    "goodbye": "goodbye",
    "repeat": "repeat",
    "what_can_i_ask_you": "help",
}
# CLINC150's two money domains (its domains.json): their other intents are hard negatives.
CLINC_MONEY_DOMAINS = (
    "freeze_account routing pin_change bill_due pay_bill account_blocked interest_rate "
    "min_payment bill_balance order_checks replacement_card_duration expiration_date "
    "damaged_card improve_credit_score report_lost_card card_declined credit_limit_change apr "
    "redeem_rewards credit_limit rewards_balance application_status credit_score new_card "
    "international_fees"
).split()
# Banking77 categories that are complaints or disputes about a transaction.
BANKING77_PROBLEMS = frozenset(
    (
        "card_payment_not_recognised cash_withdrawal_not_recognised "
        "direct_debit_payment_not_recognised transaction_charged_twice "
        "extra_charge_on_statement request_refund wrong_amount_of_cash_received"
    ).split()
)
PER_MONEY_INTENT = 6
PER_OTHER_INTENT = 1
OOS_ROWS = 100
PER_BANKING77_CATEGORY = 4


def banking77_heldout(rng: random.Random) -> list[dict[str, str]]:
    """PER_BANKING77_CATEGORY rows of each Banking77 category, drawn with `rng`."""
    with BANKING77.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    by_category: dict[str, list[str]] = {}
    for row in rows:
        by_category.setdefault(row["category"], []).append(row["text"])
    items = []
    for category in sorted(by_category):
        intent = "report_problem" if category in BANKING77_PROBLEMS else "unknown"
        for text in rng.sample(by_category[category], PER_BANKING77_CATEGORY):
            items.append({"text": text, "intent": intent, "from": f"banking77:{category}"})
    return items


def clinc_heldout(data: dict[str, list[list[str]]], rng: random.Random) -> list[dict[str, str]]:
    by_intent: dict[str, list[str]] = {}
    for text, label in data["test"]:
        by_intent.setdefault(label, []).append(text)
    items = []
    for label in sorted(by_intent):
        texts = by_intent[label]
        if label in ("balance", "transfer", "transactions", "spending_history", "report_fraud"):
            chosen = texts
        elif label in CLINC_MONEY_DOMAINS:
            chosen = rng.sample(texts, PER_MONEY_INTENT)
        else:
            chosen = rng.sample(texts, PER_OTHER_INTENT)
        intent = CLINC_TO_OURS.get(label, "unknown")
        items += [{"text": text, "intent": intent, "from": f"clinc150:{label}"} for text in chosen]
    oos = rng.sample([text for text, _ in data["oos_test"]], OOS_ROWS)
    return items + [{"text": text, "intent": "unknown", "from": "clinc150:oos"} for text in oos]


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    rng = random.Random(SEED)
    items = clinc_heldout(data, rng) + banking77_heldout(rng)
    out = HERE / "heldout.yaml"
    header = "# Built by data/heldout/build.py (seed 17); read README.md before using it.\n"
    out.write_text(header + yaml.safe_dump(items, sort_keys=False, width=200), encoding="utf-8")
    print(f"{len(items)} items written to {out}")


if __name__ == "__main__":
    main()
