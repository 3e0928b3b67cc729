"""CPU cost of the embedding stage's sentence encoder (nlu/embedding.py), one sentence at a
time as in a live turn, over the sentences of data/nlu.yml. Prints figures; never fails.

    .venv/bin/python bench/bench_embedding.py [--sentences 400]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu.embedding import SentenceEncoder  # noqa: E402
from nlu.examples import training_examples  # noqa: E402
from nlu.rules import normalise  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=400)
    args = parser.parse_args()
    encoder = SentenceEncoder()
    texts = [normalise(text) for text, _ in training_examples()]
    step = max(1, len(texts) // args.sentences)
    texts = texts[::step][: args.sentences]
    encoder.encode(texts[:5])  # first-call costs (allocator, BLAS) are not a sentence's
    cpu, wall = [], []
    for text in texts:
        started_cpu, started = time.thread_time(), time.perf_counter()
        encoder.encode([text])
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    for name, values in (("thread CPU", cpu), ("wall", wall)):
        p95 = statistics.quantiles(values, n=20)[18]
        print(
            f"{name:<10} p50 {statistics.median(values):.2f} ms  p95 {p95:.2f} ms  n={len(values)}"
        )


if __name__ == "__main__":
    main()
