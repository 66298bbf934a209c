"""Job classes: ``short`` / ``medium`` / ``long`` by total tokens (prompt + output)."""

from __future__ import annotations

from pydantic import Field, model_validator

from driftsched.config import Config

CLASSES = ("short", "medium", "long")


class JobClassConfig(Config):
    """``short`` if prompt + output <= ``short_max_tokens``, ``medium`` if <= ``medium_max_tokens``,
    else ``long``."""

    short_max_tokens: int = Field(128, ge=1)
    medium_max_tokens: int = Field(512, ge=1)

    @model_validator(mode="after")
    def _ordered(self):
        if self.medium_max_tokens < self.short_max_tokens:
            raise ValueError("medium_max_tokens must be >= short_max_tokens")
        return self

    def classify(self, prompt_tokens: int, output_tokens: int) -> str:
        total = prompt_tokens + output_tokens
        if total <= self.short_max_tokens:
            return "short"
        return "medium" if total <= self.medium_max_tokens else "long"
