"""The webhooks section of config.yaml, which documents each key."""

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Positive = Annotated[float, Field(gt=0)]


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_subscriptions_per_user: Annotated[int, Field(ge=1)]
    allowed_private_hosts: list[str]
    timeout_s: Positive
    max_attempts: Annotated[int, Field(ge=1)]
    retry_base_s: Positive
    retry_max_s: Positive
    lease_s: Positive
    poll_interval_s: Positive
    batch_size: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Self:
        # A lease that ran out mid-attempt would let another process send the row as well.
        if self.lease_s <= self.timeout_s:
            raise ValueError("webhooks.lease_s must be longer than webhooks.timeout_s")
        return self

    def retry_delay_s(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt: base, 2x base, 4x base...
        up to retry_max_s."""
        return min(self.retry_max_s, self.retry_base_s * 2.0 ** (attempts - 1))
