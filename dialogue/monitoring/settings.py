"""The observability section of config.yaml, which documents each key."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

MIN_TOKEN_CHARS = 32


class ObservabilitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metrics_token: str
    inference_probe_interval_s: Annotated[float, Field(gt=0)]
    recent_errors: Annotated[int, Field(ge=0)]

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, token: str) -> str:
        if token and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be empty or at least {MIN_TOKEN_CHARS} characters")
        return token
