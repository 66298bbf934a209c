"""The study's request categories and their output caps — a constant the estimators read, in a
module of its own so that reading it costs no pandas import (traces.assign uses it too)."""

from __future__ import annotations

#: category -> its output-length cap in tokens (the study's static estimate's base)
CATEGORY_CAPS: dict[str, int] = {"short_qa": 64, "summary": 256, "technical": 384, "report": 512}
