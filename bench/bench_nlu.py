"""Understanding through the real server: `POST /test-nlu` on a labelled set, whole cascade.

Starts `server.py` on its default settings (rules → embedding → Rasa → LLM, all warm once
/health says healthy) on a fresh SQLite database, posts every sentence of the set once,
one at a time, and prints:
- p50 / p95 latency of /test-nlu, and how many sentences the LLM stage answered (the
  result's `source`), with the p50 of those;
- in-scope intent accuracy per banking intent, `report_problem` found, and the share of
  the sentences that ask for no banking action that got none, counted as the assistant
  acts (a transfer between the user's own accounts is answered with what it can do:
  `nlu.evaluate.acted_on`);
- the confusions.
The first pass warms the caches of nothing: each sentence is new to the server.
Prints figures; never fails on them.

    .venv/bin/python bench/bench_nlu.py [FILE] [--root CHECKOUT]

FILE defaults to data/heldout/fresh_test8.yaml (report that only once its figures are the
final ones; tune on `python -m nlu.evaluate --kfold 5`). `--root` runs the server of
another checkout (a `git worktree` of an earlier commit, for the figures before a
change) on the same set.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_api import ROOT, free_port, start_server
from nlu.evaluate import acted_on
from nlu.examples import HELDOUT
from nlu.pipeline import NLUSettings, Pipeline
from nlu.result import BANKING_INTENTS, NLUResult
from nlu.stages import RulesStage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=HELDOUT)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose server runs")
    args = parser.parse_args()
    items = yaml.safe_load(args.file.read_text(encoding="utf-8"))
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(port, Path(scratch) / "bench.db", None, root=args.root.resolve())
        try:
            readings = read_all(f"http://127.0.0.1:{port}", [item["text"] for item in items])
        finally:
            server.terminate()
            server.wait()
    config = yaml.safe_load((args.root / "config.yaml").read_text(encoding="utf-8"))
    # Only its thresholds are used: which readings the assistant is sure enough to act on.
    judge = Pipeline(NLUSettings.model_validate(config["nlu"]), [RulesStage()])
    report(items, readings, judge)


def read_all(base: str, texts: list[str]) -> list[tuple[NLUResult, float]]:
    """Each sentence's reading by /test-nlu and its round trip in ms."""
    readings = []
    with httpx.Client(timeout=60) as client:
        for text in texts:
            started = time.perf_counter()
            answer = client.post(f"{base}/test-nlu", json={"message": text})
            elapsed_ms = (time.perf_counter() - started) * 1000
            answer.raise_for_status()
            readings.append((NLUResult.model_validate(answer.json()["result"]), elapsed_ms))
    return readings


def report(items: list[dict], readings: list[tuple[NLUResult, float]], judge: Pipeline) -> None:
    latencies = [ms for _, ms in readings]
    llm = [ms for result, ms in readings if result.source == "llm"]
    cuts = statistics.quantiles(latencies, n=20)
    print(
        f"/test-nlu, {len(items)} sentences: p50 {statistics.median(latencies):.1f} ms"
        f"  p95 {cuts[18]:.1f} ms"
    )
    llm_p50 = f", p50 {statistics.median(llm):.0f} ms" if llm else ""
    print(f"answered by the LLM stage: {len(llm)} ({len(llm) / len(items):.1%}){llm_p50}")
    pairs = [
        (
            item["intent"],
            acted_on(result, item["text"]) if judge.is_sure(result, item["text"]) else "unknown",
        )
        for item, (result, _) in zip(items, readings, strict=True)
    ]
    inside = [(gold, got) for gold, got in pairs if gold in BANKING_INTENTS]
    hits = sum(gold == got for gold, got in inside)
    print(f"in-scope intent: {hits}/{len(inside)} ({hits / len(inside):.1%})")
    for intent in (*BANKING_INTENTS, "report_problem"):
        mine = [got for gold, got in pairs if gold == intent]
        if mine:
            right = mine.count(intent)
            print(f"  {intent:<20} {right}/{len(mine)} ({right / len(mine):.1%})")
    outside = [got for gold, got in pairs if gold not in BANKING_INTENTS]
    kept = sum(got not in BANKING_INTENTS for got in outside)
    print(f"no banking action on the rest: {kept}/{len(outside)} ({kept / len(outside):.2%})")
    wrong = Counter((gold, got) for gold, got in pairs if gold != got)
    print("confused: " + "  ".join(f"{g}→{p} {n}" for (g, p), n in wrong.most_common(8)))


if __name__ == "__main__":
    main()
