"""What the gateway's estimator could really know: the length unit it counts in and the
category a classifier gives it — the two mechanisms of the reference study's two variants.

The study's public code comes as ``with-tokenizer/`` (lengths counted in tokens, the request's
category given) and ``with-split/``: the worker feeds back ``len(generated_text.split())`` —
whitespace *words* — as the "actual tokens", the input factor counts ``len(prompt.split())``
words, and the category comes from keyword counts in the prompt text, so it can be wrong.

:class:`EstimatorView` wraps any corrector and shows it that world:

- ``length_unit = "words"``: the corrector's admission carries the prompt in words and every
  ``observe`` gets the output in words, ``round(tokens * w)``, with a per-request words-per-token
  ratio ``w ~ Normal(words_per_token_mean, words_per_token_sd)`` clipped to [0.2, 2.0]
  (English prose runs ~0.75 words per BPE token; code and lists far fewer). The estimate it
  returns is used as is — the study's scheduler ranks by that word count. The estimate metrics
  (``est_mae_tokens`` ...) then count words too, against the records' ``observed_length``
  column, as the study's did.
- ``category_confusion = p``: a share ``p`` of requests reach the corrector with a uniformly
  chosen *other* category of the study's four (the keyword classifier's mistakes); the records'
  ``classified_category`` column says which.

The draws come from one seeded stream (``seed``), made once per run for every trace row, so a
run is reproducible and the simulator and the live gateway see the same view. With the defaults
(tokens, no confusion) there is no wrapper at all: runs are as before, byte for byte.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from driftsched.traces.categories import CATEGORY_CAPS
from pydantic import Field

from driftsched.ground.config import Config

if TYPE_CHECKING:  # numpy and pandas are imported where used: reading this module stays cheap
    import numpy as np
    import pandas as pd

CATEGORIES = tuple(CATEGORY_CAPS)


class EstimatorViewConfig(Config):
    """What the estimator counts in and how often its category is wrong (defaults: tokens,
    never — the ``with-tokenizer`` variant)."""

    length_unit: Literal["tokens", "words"] = "tokens"
    words_per_token_mean: float = Field(0.75, gt=0, description="words per token (mean)")
    words_per_token_sd: float = Field(0.12, ge=0, description="its spread across requests")
    category_confusion: float = Field(
        0.0, ge=0, le=1, description="share of requests given a wrong category"
    )
    seed: int = Field(0, ge=0)

    @property
    def active(self) -> bool:
        return self.length_unit != "tokens" or self.category_confusion > 0


class EstimatorView:
    """A corrector seen through :class:`EstimatorViewConfig` (see the module docstring), for a
    run over the trace rows whose true categories are ``categories`` (array-like)."""

    def __init__(self, corrector, config: EstimatorViewConfig, categories):
        import numpy as np

        from driftsched.ground.rng import stream

        self.corrector, self.config = corrector, config
        self.name = getattr(corrector, "name", type(corrector).__name__)
        n = len(categories)
        rng = stream(config.seed, "estimator-view")
        words = config.length_unit == "words"
        mean, sd = config.words_per_token_mean, config.words_per_token_sd
        self.wpt_output = np.clip(rng.normal(mean, sd, n), 0.2, 2.0) if words else None
        self.wpt_prompt = np.clip(rng.normal(mean, sd, n), 0.2, 2.0) if words else None
        import pandas as pd

        true = pd.Series(categories, dtype=object).astype(str).to_numpy()
        code = pd.Categorical(true, categories=CATEGORIES).codes.astype(np.int64)  # -1: unknown
        flip = (rng.random(n) < config.category_confusion) & (code >= 0)
        shift = rng.integers(1, len(CATEGORIES), n)
        other = np.asarray(CATEGORIES)[(code + shift) % len(CATEGORIES)]
        classified = np.where(flip, other, true)
        self.classified = classified.tolist() if config.category_confusion > 0 else None
        if callable(getattr(corrector, "distribution", None)):
            self.distribution = lambda adm: corrector.distribution(self.view(adm))
        if callable(getattr(corrector, "state", None)):
            self.state = corrector.state
        self._observe = getattr(corrector, "observe", None)

    def view(self, adm):
        """The admission as the corrector sees it."""
        changes = {}
        if self.classified is not None:
            changes["category"] = self.classified[adm.index]
        if self.wpt_prompt is not None:
            changes["prompt_tokens"] = max(1, round(adm.prompt_tokens * self.wpt_prompt[adm.index]))
        return adm._replace(**changes)

    def observed(self, index: int, tokens: int) -> int:
        """What the corrector is told a finished request produced."""
        if self.wpt_output is None:
            return tokens
        return max(1, round(tokens * float(self.wpt_output[index])))

    def estimate(self, adm) -> int:
        return self.corrector.estimate(self.view(adm))

    def observe(self, adm, actual_tokens: int) -> None:
        if self._observe is not None:
            self._observe(self.view(adm), self.observed(adm.index, actual_tokens))

    def columns(self, output_tokens: np.ndarray) -> dict[str, np.ndarray]:
        """The records' extra columns: ``observed_length`` (words mode: what the corrector was
        or would have been told) and ``classified_category`` (with confusion)."""
        import numpy as np

        out = {}
        if self.wpt_output is not None:
            out["observed_length"] = np.maximum(1, np.rint(output_tokens * self.wpt_output)).astype(
                np.int64
            )
        if self.classified is not None:
            import pandas as pd

            out["classified_category"] = pd.Categorical(self.classified)
        return out


def with_view_columns(records: pd.DataFrame, corrector, output_tokens) -> pd.DataFrame:
    """``records`` with the estimator view's columns (``observed_length``,
    ``classified_category``) when ``corrector`` is an :class:`EstimatorView`; else as is.
    Both drivers (the simulator and the live gateway) call this on their records."""
    if not isinstance(corrector, EstimatorView):
        return records
    import numpy as np

    return records.assign(**corrector.columns(np.asarray(output_tokens)))
