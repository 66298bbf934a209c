"""Job classes: ``short`` / ``medium`` / ``long`` by total tokens (prompt + output)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from driftsched.ground.config import Config

if TYPE_CHECKING:  # numpy is imported where used: reading this module stays cheap
    import numpy as np

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

    def codes(self, prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`classify`: index into :data:`CLASSES` per row (int8)."""
        import numpy as np

        total = np.asarray(prompt_tokens) + np.asarray(output_tokens)
        out = np.full(total.shape, 2, dtype=np.int8)
        out[total <= self.medium_max_tokens] = 1
        out[total <= self.short_max_tokens] = 0
        return out
