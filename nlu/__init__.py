"""Text → NLUResult. Imports no other package of ours."""

from nlu.pipeline import NLUSettings, Pipeline
from nlu.result import NLUResult

__all__ = ["NLUResult", "NLUSettings", "Pipeline"]
