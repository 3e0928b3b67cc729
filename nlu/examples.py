"""The training examples of data/nlu.yml as (text, intent) pairs, for the embedding stage
and for k-fold evaluation.

Rasa's entity marks ("send [500](amount) to [ravi](receiver)") become plain text and
`out_of_scope` becomes our `unknown`. Any sentence of a held-out set (data/heldout/) is
left out, so the figure reported on it stays honest even if one slips into the training
file.
"""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "data" / "nlu.yml"
# Labelled sentences written by people who never saw the rules or examples (mostly hard
# negatives: money words, no request): the embedding stage learns from them too.
WRITTEN = tuple(sorted((ROOT / "data" / "dev").glob("*.yaml")))
# The set reported on: written before the changes it measures, never tuned on.
HELDOUT = ROOT / "data" / "heldout" / "fresh_test7.yaml"
# Sets reported before the current one was written: no longer held-out figures, but still
# kept out of training so that earlier figures can be compared.
EARLIER_HELDOUT = (
    ROOT / "data" / "heldout" / "fresh_test6.yaml",
    ROOT / "data" / "heldout" / "fresh_test5.yaml",
    ROOT / "data" / "heldout" / "fresh_test4.yaml",
    ROOT / "data" / "heldout" / "fresh_test3.yaml",
    ROOT / "data" / "heldout" / "fresh_test2.yaml",
    ROOT / "data" / "heldout" / "fresh_test.yaml",
    ROOT / "data" / "heldout" / "heldout.yaml",
)

ENTITY = re.compile(r"\[([^\]]*)\]\([^)]*\)")
RENAMED = {"out_of_scope": "unknown"}


def heldout_texts(paths: tuple[Path, ...] = (HELDOUT, *EARLIER_HELDOUT)) -> set[str]:
    return {
        item["text"]
        for path in paths
        if path.is_file()
        for item in yaml.safe_load(path.read_text(encoding="utf-8"))
    }


def training_examples(
    path: Path = TRAINING, written: tuple[Path, ...] = WRITTEN
) -> list[tuple[str, str]]:
    """(text, intent) for every example in the Rasa training file and the `written` sets,
    held-out ones excluded."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    held = heldout_texts()
    pairs: list[tuple[str, str]] = []
    for block in data["nlu"]:
        if "intent" not in block:
            continue  # regexes and synonyms
        intent = RENAMED.get(block["intent"], block["intent"])
        for line in block["examples"].splitlines():
            text = ENTITY.sub(r"\1", line.strip().removeprefix("- ")).strip()
            if text and text not in held:
                pairs.append((text, intent))
    for labelled in written:
        for item in yaml.safe_load(labelled.read_text(encoding="utf-8")):
            if item["text"] not in held:
                pairs.append((item["text"], item["intent"]))
    return pairs
