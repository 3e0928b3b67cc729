"""Text → NLUResult. Imports no other package of ours."""

from nlu.pipeline import NLUSettings, Pipeline
from nlu.result import NLUResult
from nlu.rules import between_own_accounts, negates
from nlu.rules import slots as read_slots
from nlu.stages import BackendSettings, build_stages


def build_pipeline(settings: NLUSettings, backends: BackendSettings) -> Pipeline:
    """The cascade as configured, its stages started."""
    return Pipeline(settings, build_stages(settings.backends, backends))


__all__ = [
    "BackendSettings",
    "NLUResult",
    "NLUSettings",
    "Pipeline",
    "between_own_accounts",
    "build_pipeline",
    "negates",
    "read_slots",
]
