"""Evaluate each NLU stage alone and the cascade on labelled sets.

    python -m nlu.evaluate [FILE...] [--kfold 5] [--heldout] [--config config.yaml]
                           [--backends rules,embedding,rasa,llm] [--sample 200] [--seed 7]

FILE is either our labelled YAML (a list of {text, intent, amount?, receiver?, count?,
category?, period?}) or a CLINC150 JSON file, whose intents map to ours: balance →
check_balance, transfer → send_money, transactions → transaction_history,
spending_history → check_spending, everything else → unknown.
Predictions outside a set's labels (a greeting on CLINC, say) count as unknown, and so
does any reading below its stage's threshold. Stages slower than 50 ms a call are run on
a random sample of --sample items; the cascade always sees every item.

--kfold K scores the embedding stage, and rules then embedding as a cascade, on the
training examples of data/nlu.yml, each fold read with its own examples left out of the
embedding stage's index (the rules learn nothing; Rasa and the LLM are not refitted per
fold, so they are not in it). This is the figure to tune on; data/dev/ is training data.
--heldout reports data/heldout/fresh_test8.yaml last: the figure to report, never to tune
on (data/heldout/README.md says how both sets were made).
"""

import argparse
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import yaml

from nlu.examples import HELDOUT, training_examples
from nlu.pipeline import NLUSettings, Pipeline, Stage
from nlu.result import BANKING_INTENTS, NLUResult
from nlu.rules import between_own_accounts, normalise
from nlu.semantic import Vote
from nlu.stages import BackendSettings, EmbeddingStage, RulesStage, build_stages, reading

CLINC_INTENTS = {
    "balance": "check_balance",
    "transfer": "send_money",
    "transactions": "transaction_history",
    "spending_history": "check_spending",
}
SLOW_STAGE_MS = 50.0
CONFUSIONS = 6
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    amount: Decimal | None = None
    receiver: str | None = None
    count: int | None = None
    category: str | None = None
    period: str | None = None
    labelled_slots: bool = False


def load_examples(path: Path) -> list[Example]:
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [row for split in ("val", "oos_val") for row in data.get(split, [])]
        return [Example(text, CLINC_INTENTS.get(label, "unknown")) for text, label in rows]
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Example(
            item["text"],
            item["intent"],
            None if item.get("amount") is None else Decimal(str(item["amount"])),
            item.get("receiver"),
            item.get("count"),
            item.get("category"),
            item.get("period"),
            labelled_slots="from" not in item,  # the held-out set labels intents only
        )
        for item in items
    ]


@dataclass
class Scores:
    name: str
    n: int
    accuracy: float
    macro_f1: float
    unknown_precision: float
    unknown_recall: float
    slots: dict[str, tuple[int, int]]
    p50_ms: float
    p95_ms: float
    per_intent: dict[str, tuple[int, int]]
    # Sentences that ask for none of the banking intents, and how many of them were read as
    # one (a balance read-out, a transfer, a statement, a spending total) anyway.
    no_action: tuple[int, int]
    confusions: list[tuple[str, str, int]]


def score(
    name: str,
    examples: list[Example],
    read: Callable[[str], NLUResult | None],
    is_sure: Callable[[NLUResult, str], bool],
) -> Scores:
    labels = {example.intent for example in examples}
    predicted: list[str] = []
    latencies: list[float] = []
    slots = {key: [0, 0] for key in ("amount", "receiver", "count", "category", "period")}
    for example in examples:
        normalise.cache_clear()  # time each item as a first reading, as in a live turn
        EmbeddingStage.embed.cache_clear()
        started = time.perf_counter()
        result = read(example.text)
        latencies.append((time.perf_counter() - started) * 1000)
        sure = result is not None and is_sure(result, example.text)
        intent = acted_on(result, example.text) if sure and result else "unknown"
        predicted.append(intent if intent in labels else "unknown")
        if example.labelled_slots and example.intent == "send_money":
            _tally(slots["amount"], example.amount, result and result.amount)
            _tally(slots["receiver"], example.receiver, result and result.receiver)
        if example.labelled_slots and example.intent == "transaction_history":
            _tally(slots["count"], example.count, result and result.transaction_count)
        if example.labelled_slots and example.intent == "check_spending":
            _tally(slots["category"], example.category, result and result.category)
            _tally(slots["period"], example.period, result and result.period)
    gold = [example.intent for example in examples]
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    pairs = list(zip(gold, predicted, strict=True))
    outside = [p for g, p in pairs if g not in BANKING_INTENTS]
    wrong = Counter((g, p) for g, p in pairs if g != p)
    return Scores(
        name=name,
        n=len(examples),
        accuracy=sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(examples),
        macro_f1=_macro_f1(gold, predicted),
        unknown_precision=_precision(gold, predicted, "unknown"),
        unknown_recall=_recall(gold, predicted, "unknown"),
        slots={key: (hit, total) for key, (hit, total) in slots.items() if total},
        p50_ms=statistics.median(latencies),
        p95_ms=cuts[18],
        per_intent={
            label: (sum(p == label for g, p in pairs if g == label), gold.count(label))
            for label in sorted(labels)
        },
        no_action=(sum(p not in BANKING_INTENTS for p in outside), len(outside)),
        confusions=[(g, p, n) for (g, p), n in wrong.most_common(CONFUSIONS)],
    )


def acted_on(result: NLUResult, text: str) -> str:
    """The intent the assistant acts on: a transfer between the user's own accounts is
    answered with what it can do instead (dialogue/assistant.py), no banking action."""
    if result.intent == "send_money" and between_own_accounts(text):
        return "unknown"
    return result.intent


def _tally(counter: list[int], gold: object, got: object) -> None:
    counter[1] += 1
    counter[0] += int(gold == got)


def _precision(gold: list[str], predicted: list[str], label: str) -> float:
    chosen = [g for g, p in zip(gold, predicted, strict=True) if p == label]
    return sum(g == label for g in chosen) / len(chosen) if chosen else 0.0


def _recall(gold: list[str], predicted: list[str], label: str) -> float:
    wanted = [p for g, p in zip(gold, predicted, strict=True) if g == label]
    return sum(p == label for p in wanted) / len(wanted) if wanted else 0.0


def _macro_f1(gold: list[str], predicted: list[str]) -> float:
    f1s = []
    for label in sorted(set(gold)):
        precision, recall = _precision(gold, predicted, label), _recall(gold, predicted, label)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(f1s) / len(f1s)


def report(scores: Scores) -> str:
    slots = "  ".join(
        f"{key} {hit}/{total} ({hit / total:.1%})" for key, (hit, total) in scores.slots.items()
    )
    intents = "  ".join(
        f"{label} {hit}/{total} ({hit / total:.1%})"
        for label, (hit, total) in scores.per_intent.items()
        if total
    )
    kept, outside = scores.no_action
    confused = "  ".join(f"{g}→{p} {n}" for g, p, n in scores.confusions)
    return (
        f"{scores.name:<10} n={scores.n:<5} accuracy {scores.accuracy:.2%}  "
        f"macro-F1 {scores.macro_f1:.3f}  unknown P {scores.unknown_precision:.2%} "
        f"R {scores.unknown_recall:.2%}  p50 {scores.p50_ms:.2f} ms  p95 {scores.p95_ms:.2f} ms"
        + (f"\n{'':<10} slots: {slots}" if slots else "")
        + f"\n{'':<10} per intent: {intents}"
        + (
            f"\n{'':<10} no banking action: {kept}/{outside} ({kept / outside:.2%})"
            if outside
            else ""
        )
        + (f"\n{'':<10} confused: {confused}" if confused else "")
    )


def evaluate(path: Path, pipeline: Pipeline, sample: int, rng: random.Random) -> Iterable[str]:
    examples = load_examples(path)
    yield f"== {path} ({len(examples)} examples)"
    for stage in pipeline.stages:
        subset = examples
        if _slow(stage, examples[:3]) and len(examples) > sample:
            subset = rng.sample(examples, sample)
        yield report(score(stage.name, subset, stage.parse, pipeline.is_sure))
    before = {name: stats.requests_today for name, stats in pipeline.stats.items()}
    yield report(score("cascade", examples, pipeline.parse, pipeline.is_sure))
    reached = {name: stats.requests_today - before[name] for name, stats in pipeline.stats.items()}
    yield "cascade reached: " + "  ".join(
        f"{name} {count} ({count / len(examples):.1%})" for name, count in reached.items()
    )


def kfold(pipeline: Pipeline, folds: int, seed: int) -> Iterable[str]:
    """The embedding stage alone and rules → embedding, k-fold over data/nlu.yml."""
    stage = next((s for s in pipeline.stages if isinstance(s, EmbeddingStage)), None)
    index = None if stage is None else stage.index
    if stage is None or index is None:
        yield "k-fold: needs the embedding stage in --backends"
        return
    pairs = training_examples()
    fold_of = np.random.default_rng(seed).permutation(len(pairs)) % folds
    position = {text: i for i, (text, _) in enumerate(pairs)}
    examples = [Example(text, intent) for text, intent in pairs]

    def fold_vote(text: str) -> Vote:
        return index.vote(stage.embed(normalise(text)), exclude=fold_of == fold_of[position[text]])

    def embedding(text: str) -> NLUResult:
        vote = fold_vote(text)
        return reading(text, vote.intent, vote.confidence, stage.name)

    # The rules' readings are checked against the fold's vote too, as the cascade checks them.
    rules_stage = RulesStage(stage.settings)
    rules_stage.evidence = fold_vote

    def cascade(text: str) -> NLUResult:
        first = rules_stage.parse(text)
        sure = first is not None and pipeline.decided(first, text)
        return first if sure and first is not None else embedding(text)

    yield f"== k-fold ({folds} folds, seed {seed}) over data/nlu.yml ({len(pairs)} examples)"
    yield report(score("embedding", examples, embedding, pipeline.is_sure))
    yield report(score("rules+emb", examples, cascade, pipeline.is_sure))


def _slow(stage: Stage, probe: list[Example]) -> bool:
    started = time.perf_counter()
    for example in probe:
        stage.parse(example.text)
    return (time.perf_counter() - started) * 1000 / max(len(probe), 1) > SLOW_STAGE_MS


def _wait_until_ready(pipeline: Pipeline, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while any(state != "ready" for state in pipeline.status().values()):
        if time.monotonic() > deadline:
            raise SystemExit(f"NLU stages not ready: {pipeline.status()}")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate the NLU stages and the cascade.")
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--kfold", type=int, default=0, help="folds over data/nlu.yml")
    parser.add_argument("--heldout", action="store_true", help="report the held-out set last")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--backends", help="comma-separated stages (default: from config)")
    parser.add_argument("--sample", type=int, default=200, help="items for slow stages")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    if args.backends:
        config["nlu"]["backends"] = args.backends.split(",")
    settings = NLUSettings.model_validate(config["nlu"])
    backends = BackendSettings(
        rasa=config["rasa"], llm=config["llm"], embedding=config["embedding"]
    )
    pipeline = Pipeline(settings, build_stages(settings.backends, backends))
    try:
        _wait_until_ready(pipeline)
        if args.kfold:
            for line in kfold(pipeline, args.kfold, args.seed):
                print(line, flush=True)
        for path in [*args.files, *([HELDOUT] if args.heldout else [])]:
            for line in evaluate(path, pipeline, args.sample, random.Random(args.seed)):
                print(line, flush=True)
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()
