"""The LLM stage on a shared server: llama.cpp's OpenAI-compatible server
(`python -m llama_cpp.server`, from the same llama-cpp-python package), one for every
server process on a host or cluster, instead of a model in each process.

It is asked exactly as the in-process model is: the same few-shot prompt (the server keeps
its KV cache, so only the utterance and the answer cost time), the same GBNF grammar, the
same answer tokens and temperature, and the same time budget: an answer not back within
`llm.time_budget_s` is given up and the cascade goes on without it. The server answers one
request at a time, and a completion given up by its client still runs to its end there
(at most `llm.max_tokens` tokens), so a busy server makes the next callers wait: add
servers behind a balancer when many calls run out of time (docs/operations.md).
"""

import time

import httpx

from nlu.llm import GRAMMAR, USER_END, LLMSettings, decode, few_shot_prefix, model_text, reading
from nlu.result import NLUResult

# The server reads the prompt's special tokens as such: a typed "<|im_end|>" must not end
# the user's turn, so the markers' brackets are taken out of what the user said.
SPECIAL_MARKERS = ("<|", "|>")
CONNECT_TIMEOUT_S = 1.0
# The first call reads the whole few-shot prompt (~1,500 tokens): seconds on a quiet CPU,
# minutes on a busy one.
WARM_UP_TIMEOUT_S = 300.0


def plain(text: str) -> str:
    for marker in SPECIAL_MARKERS:
        text = text.replace(marker, " ")
    return text


class LLMClient:
    """An `LLMBackend` that asks the shared server; None when it is down, busy past the
    budget, or its answer was cut short."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._url = settings.url.rstrip("/")
        self._prefix = few_shot_prefix()
        self._client = httpx.Client(timeout=httpx.Timeout(settings.time_budget_s))

    def warm_up(self, timeout_s: float = WARM_UP_TIMEOUT_S) -> bool:
        """Have the server read the few-shot prompt once, as the model in process does when
        it loads, so that later calls find it cached; False if the server did not answer."""
        return self._complete("hello", timeout_s) is not None

    def parse(self, text: str) -> NLUResult | None:
        generated = self._complete(text, self.settings.time_budget_s)
        answer = None if generated is None else decode(generated)
        return None if answer is None else reading(answer, text, self.settings.confidence)

    def _complete(self, text: str, timeout_s: float) -> str | None:
        """The server's grammar-bound answer; None when it is down, out of time, or the
        message did not fit its context."""
        request = {
            "prompt": self._prefix + model_text(plain(text)) + USER_END,
            "max_tokens": self.settings.max_tokens,
            "temperature": 0.0,
            "grammar": GRAMMAR,
        }
        try:
            response = self._client.post(
                f"{self._url}/v1/completions",
                json=request,
                timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            )
            response.raise_for_status()
            return str(response.json()["choices"][0]["text"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return None

    def probe(self) -> float | None:
        """Milliseconds for the server to tokenize a short text, or None if it does not answer
        within the time budget. The server does one thing at a time, so this includes
        waiting for a completion under way (one given up by its client runs to its end)."""
        started = time.perf_counter()
        try:
            response = self._client.post(
                f"{self._url}/extras/tokenize", json={"input": "health check"}
            )
            response.raise_for_status()
        except httpx.HTTPError:
            return None
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self._client.close()
