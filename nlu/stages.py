"""The stages of the cascade, each adapting one backend to `pipeline.Stage`."""

from nlu import rules
from nlu.result import NLUResult


class RulesStage:
    """Deterministic patterns: microseconds, always available."""

    name = rules.SOURCE
    fills_slots = True

    def parse(self, text: str) -> NLUResult:
        return rules.parse(text)

    def status(self) -> str:
        return "ready"

    def close(self) -> None:
        """Nothing to release."""


def build_stages(backends: list[str]) -> list:
    """The configured stages, in order."""
    factories = {"rules": RulesStage}
    unknown = [name for name in backends if name not in factories]
    if unknown:
        raise ValueError(f"unknown NLU backends {unknown}; available: {sorted(factories)}")
    return [factories[name]() for name in backends]
