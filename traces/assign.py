"""Assignment rules for what real traces lack: tenants, tiers, categories and ``max_tokens``.

Every rule is explicit, seeded and documented in docs/traces.md:

- **tenants** (``TenantRule``): ``uniform:N`` (N tenants ``tenant-0..N-1``, uniform per request),
  ``weights:a=0.5,b=0.3,c=0.2`` (named tenants, per-request draw by weight), or
  ``column:NAME[+NAME]`` (the tenant is a source column, or several joined by ``/``, e.g.
  BurstGPT's ``x_model+x_log_type``).
- **tiers** (``TierRule``): ``premium=1,standard=1,batch=1`` — tenants sorted by request count
  (busiest first, ties by name) take tiers in the listed order, each tier getting a share of the
  tenants proportional to its weight (largest remainder). A single tenant gets the first tier.
- **categories**: output-length bins ``short_qa <= 64 < summary <= 256 < technical <= 384 <
  report`` (the study's caps), optionally with a seeded fraction ``noise`` of requests moved to
  a uniformly chosen *other* category so category is informative but not an oracle.
- **max_tokens** (``rule``): ``pow2`` (next power of two >= output, at least 16; default),
  ``cap`` (the category's cap, or the output when that is larger), ``output`` (exactly the output:
  every request stops at its cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from driftsched.traces.categories import CATEGORY_CAPS

from driftsched.ground.errors import InputError

MaxTokensRule = Literal["pow2", "cap", "output"]
MAX_TOKENS_RULES: tuple[str, ...] = get_args(MaxTokensRule)


def _pairs(text: str, what: str) -> list[tuple[str, float]]:
    out = []
    for part in filter(None, text.split(",")):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or not name.strip() or weight < 0:
            raise InputError(f"{what} {text!r}: expected name=weight pairs, got {part!r}")
        out.append((name.strip(), weight))
    if not out or sum(w for _, w in out) <= 0:
        raise InputError(f"{what} {text!r}: need at least one positive weight")
    return out


@dataclass(frozen=True)
class TenantRule:
    """How to give each request a tenant. Build with :meth:`parse`."""

    kind: str
    names: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    column: str | None = None

    @classmethod
    def parse(cls, text: str) -> TenantRule:
        kind, _, rest = text.partition(":")
        if kind == "uniform":
            try:
                n = int(rest)
            except ValueError:
                n = 0
            if n < 1:
                raise InputError(f"tenant rule {text!r}: expected uniform:N with N >= 1")
            return cls("weights", tuple(f"tenant-{i}" for i in range(n)), (1.0,) * n)
        if kind == "weights":
            names, weights = zip(*_pairs(rest, "tenant rule"), strict=True)
            return cls("weights", names, weights)
        if kind == "column" and rest:
            return cls("column", column=rest)
        raise InputError(
            f"tenant rule {text!r}: expected uniform:N, weights:a=w,b=w or column:NAME"
        )

    def apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Tenant per row of ``frame`` (which holds source columns for ``column:``)."""
        if self.kind == "column":
            names = self.column.split("+")
            for name in names:
                if name not in frame.columns:
                    raise InputError(
                        f"tenant rule column:{self.column}: no source column {name!r}; available: "
                        f"{', '.join(c for c in frame.columns if c.startswith('x_')) or 'none'}"
                    )
            parts = [frame[n].astype("string").fillna("unknown") for n in names]
            joined = parts[0]
            for part in parts[1:]:
                joined = joined + "/" + part
            return joined.to_numpy(dtype=object)
        p = np.asarray(self.weights) / sum(self.weights)
        return np.asarray(self.names, dtype=object)[rng.choice(len(self.names), len(frame), p=p)]


def assign_tiers(tenants: np.ndarray, spec: str) -> np.ndarray:
    """Tier per request from the tier rule ``spec`` (see module docstring)."""
    tiers = _pairs(spec, "tier rule")
    counts = pd.Series(tenants).value_counts()
    order = sorted(counts.index, key=lambda t: (-counts[t], str(t)))
    total = sum(w for _, w in tiers)
    quotas = [w / total * len(order) for _, w in tiers]
    seats = [int(q) for q in quotas]
    for i in sorted(range(len(tiers)), key=lambda i: (-(quotas[i] - seats[i]), i)):
        if sum(seats) >= len(order):
            break
        seats[i] += 1
    mapping, k = {}, 0
    for (tier, _), n in zip(tiers, seats, strict=True):
        for tenant in order[k : k + n]:
            mapping[tenant] = tier
        k += n
    return pd.Series(tenants).map(mapping).to_numpy(dtype=object)


def categories_from_output(
    output_tokens: np.ndarray, rng: np.random.Generator, noise: float = 0.0
) -> np.ndarray:
    """Category per request from output-length bins, with a ``noise`` fraction re-labelled."""
    if not 0.0 <= noise <= 1.0:
        raise InputError(f"category noise must be in [0, 1], got {noise}")
    names = np.asarray(list(CATEGORY_CAPS), dtype=object)
    edges = np.asarray(list(CATEGORY_CAPS.values())[:-1])
    idx = np.searchsorted(edges, output_tokens, side="left")
    flip = rng.random(len(idx)) < noise
    shift = rng.integers(1, len(names), len(idx))
    idx = np.where(flip, (idx + shift) % len(names), idx)
    return names[idx]


def max_tokens_for(output_tokens: np.ndarray, categories: np.ndarray, rule: str) -> np.ndarray:
    """``max_tokens`` per request by ``rule`` (see module docstring); always >= output."""
    out = np.asarray(output_tokens, dtype=np.int64)
    if rule == "output":
        return out.copy()
    if rule == "pow2":
        return np.maximum(16, 2 ** np.ceil(np.log2(np.maximum(out, 1))).astype(np.int64))
    if rule == "cap":
        caps = pd.Series(categories).map(CATEGORY_CAPS).fillna(0).to_numpy(dtype=np.int64)
        return np.maximum(caps, out)
    raise InputError(
        f"unknown max_tokens rule {rule!r}; expected one of: {', '.join(MAX_TOKENS_RULES)}"
    )
