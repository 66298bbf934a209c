"""The generator registry: one table, name -> (config model, function).

To add a generator: write a module with a :class:`~driftsched.ground.config.Config` subclass and a
``generate(config) -> Trace`` function, then add one line to ``GENERATORS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftsched.traces.paper import PaperConfig, generate_paper
from driftsched.traces.sessions import SessionsConfig, generate_sessions
from driftsched.traces.synthetic import SyntheticConfig, generate_synthetic
from driftsched.traces.trace import Trace

from driftsched.ground.config import Config, build
from driftsched.ground.errors import UnknownNameError


@dataclass(frozen=True)
class Generator:
    config: type[Config]
    run: Callable[[Any], Trace]
    summary: str
    fixed: tuple[tuple[str, Any], ...] = ()


GENERATORS: dict[str, Generator] = {
    "driftsched-paper": Generator(
        PaperConfig, generate_paper, "the reference study's 3-tenant learning+stress workload"
    ),
    "poisson": Generator(
        SyntheticConfig,
        generate_synthetic,
        "Poisson arrivals, N weighted tenants, log-normal/empirical lengths",
        (("arrival", "poisson"),),
    ),
    "gamma": Generator(
        SyntheticConfig,
        generate_synthetic,
        "gamma renewal arrivals with burstiness cv, otherwise as poisson",
        (("arrival", "gamma"),),
    ),
    "sessions": Generator(
        SessionsConfig,
        generate_sessions,
        "multi-turn chat over shared system prompts, with a prefix column (prefix caching)",
    ),
}


def generate(name: str, **params: Any) -> Trace:
    """Run generator ``name`` with ``params`` (validated; unknown names/fields raise one line)."""
    if name not in GENERATORS:
        raise UnknownNameError("generator", name, list(GENERATORS))
    gen = GENERATORS[name]
    config = build(gen.config, {**params, **dict(gen.fixed)}, f"generator {name}")
    return gen.run(config)
