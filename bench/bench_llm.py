"""Speed, memory and accuracy of the local-LLM NLU stage on this machine.

Loads the model from models/ (run `make models` first) and reports: load time (including the
few-shot prompt's warm-up), the first call, p50/p95 of warm calls, resident memory, and
accuracy on utterances that appear neither in the prompt's examples nor in the tests.
`--hog N` runs N busy-loop processes meanwhile, to see how a shared CPU changes the figures.
Prints figures; never fails on timing.

    .venv/bin/python bench/bench_llm.py [--threads 1] [--rounds 2] [--hog 0]
"""

import argparse
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.llm import LLMBackend, LLMSettings  # noqa: E402

# (utterance, intent, amount, receiver, count)
UTTERANCES: list[tuple[str, str, int | None, str | None, int | None]] = [
    ("can you send my landlord suresh 8000", "send_money", 8000, "suresh", None),
    ("i wanna give deepa one hundred and fifty rupees", "send_money", 150, "deepa", None),
    ("transfer 2.5k to arjun", "send_money", 2500, "arjun", None),
    ("what's sitting in my savings", "check_balance", None, None, None),
    ("how's my account doing", "check_balance", None, None, None),
    ("what did i buy yesterday", "transaction_history", None, None, None),
    ("pull up my ten latest transactions", "transaction_history", None, None, 10),
    ("yup", "affirm", None, None, None),
    ("yes please", "affirm", None, None, None),
    ("no i don't want that", "deny", None, None, None),
    ("scrap that", "cancel", None, None, None),
    ("hello", "greet", None, None, None),
    ("ok bye", "goodbye", None, None, None),
    ("what kind of things can i ask you", "help", None, None, None),
    ("set an alarm for 7 am", "unknown", None, None, None),
    ("who is the prime minister", "unknown", None, None, None),
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def check(backend: LLMBackend, case: tuple) -> tuple[float, bool, bool, str]:
    """(seconds, intent right, every field right, what came back)."""
    text, intent, amount, receiver, count = case
    started = time.monotonic()
    result = backend.parse(text)
    elapsed = time.monotonic() - started
    if result is None:
        return elapsed, False, False, "None"
    want_amount = None if amount is None else Decimal(amount)
    fields = (result.amount, result.receiver, result.transaction_count)
    right = result.intent == intent
    got = f"{result.intent} {result.amount} {result.receiver} {result.transaction_count}"
    return elapsed, right, right and fields == (want_amount, receiver, count), got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct-q4_k_m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="warm passes over the utterances")
    parser.add_argument("--hog", type=int, default=0, help="busy-loop processes alongside")
    args = parser.parse_args()
    settings = LLMSettings(
        model=args.model,
        n_threads=args.threads,
        n_ctx=2048,
        max_tokens=64,
        time_budget_s=600.0,
        confidence=0.7,
        min_support=0.35,
    )
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hog)]
    try:
        started = time.monotonic()
        backend = LLMBackend(settings, ROOT / "models")
        load = time.monotonic() - started
        first = check(backend, ("check my balance", "check_balance", None, None, None))[0]
        results = [check(backend, case) for _ in range(args.rounds) for case in UTTERANCES]
        rss = rss_mb()
        backend.close()
    finally:
        for hog in hogs:
            hog.kill()
    times = [seconds for seconds, *_ in results]
    last_round = results[-len(UTTERANCES) :]
    print(f"model {args.model}, n_threads {args.threads}, busy-loop processes {args.hog}")
    print(f"load (incl. prompt warm-up) {load:.2f} s, first call {first:.2f} s")
    print(
        f"warm calls: n={len(times)} p50 {statistics.median(times):.2f} s "
        f"p95 {percentile(times, 0.95):.2f} s max {max(times):.2f} s"
    )
    print(f"RSS {rss:.0f} MB")
    intents = sum(right for _, right, _, _ in last_round)
    fields = sum(all_right for _, _, all_right, _ in last_round)
    print(f"accuracy: intent {intents}/{len(UTTERANCES)}, all fields {fields}/{len(UTTERANCES)}")
    for case, (seconds, right, all_right, got) in zip(UTTERANCES, last_round, strict=True):
        mark = "ok " if all_right else ("~  " if right else "BAD")
        print(f"  {mark} {seconds:5.2f} s  {case[0]!r} -> {got}")


if __name__ == "__main__":
    main()
