"""Gateway policies: one registry, :data:`POLICIES` (name -> policy class).

To add a built-in: one new file here with a :class:`Policy` subclass (its ``Params`` model if
it has parameters), then one ``POLICIES`` entry. A user's policy comes in through the very same
door without touching this package: an entry point in the group ``driftsched.policies``, or a
spec ``package.module:Class`` / ``path/to/file.py:Class`` (see docs/policies.md). The
conformance kit (:mod:`driftsched.sim.checks`) runs over both alike.
"""

from __future__ import annotations

from typing import Any

from driftsched.sim.policies.aging import AgingPolicy
from driftsched.sim.policies.bands import BandsPolicy
from driftsched.sim.policies.base import NoParams, Policy, not_a_policy
from driftsched.sim.policies.drr import DrrPolicy
from driftsched.sim.policies.edf import EdfPolicy
from driftsched.sim.policies.fifo import FifoPolicy
from driftsched.sim.policies.hrrn import HrrnPolicy
from driftsched.sim.policies.priority import PriorityPolicy
from driftsched.sim.policies.qos_adaptive import QosAdaptivePolicy
from driftsched.sim.policies.sjf import SjfPolicy
from driftsched.sim.policies.sjf_aging import SjfAgingPolicy
from driftsched.sim.policies.sjf_tail import SjfTailPolicy
from driftsched.sim.policies.vtc import VtcPolicy
from driftsched.sim.policies.weighted import WeightedPolicy

from driftsched.ground.config import build
from driftsched.ground.registry import Registry

#: name -> policy class (its ``Params`` model validates ``policy_params``)
POLICIES: Registry[type[Policy]] = Registry(
    "policy",
    {
        "fifo": FifoPolicy,
        "priority": PriorityPolicy,
        "weighted": WeightedPolicy,
        "sjf": SjfPolicy,
        "aging": AgingPolicy,
        # the field's baselines (docs/policies.md says where each comes from)
        "vtc": VtcPolicy,
        "drr": DrrPolicy,
        "edf": EdfPolicy,
        "sjf_aging": SjfAgingPolicy,
        "hrrn": HrrnPolicy,
        "bands": BandsPolicy,
        "qos_adaptive": QosAdaptivePolicy,
        # uses the corrector's length distribution when there is one (docs/correctors.md)
        "sjf_tail": SjfTailPolicy,
    },
    group="driftsched.policies",
    accepts=not_a_policy,
)


def make_policy(spec, params: dict[str, Any] | None = None) -> Policy:
    """A policy from a spec (registered name, entry point, ``module:Class``, ``file.py:Class``),
    a class, or an instance (used as is: ``params`` must then be empty). ``params`` are
    validated by the class's ``Params`` model; unknown names list the valid ones."""
    if isinstance(spec, str):
        cls = POLICIES.resolve(spec)
        what = spec
    else:
        why = not_a_policy(spec)
        if why:
            raise TypeError(why)
        if not isinstance(spec, type):
            if params:
                raise ValueError("policy_params cannot be applied to a policy instance")
            return spec
        cls, what = spec, spec.__qualname__
    if not isinstance(cls, type):
        return cls  # an entry point or spec that names an instance
    model = getattr(cls, "Params", None)
    if model is None:  # a duck-typed class without a Params model: built with no arguments
        build(NoParams, params or {}, f"policy {what}")
        return cls()
    return cls(build(model, params or {}, f"policy {what}"))


#: the reference study's five schedulers (its workload's studies compare these)
STUDY_POLICIES = ("fifo", "priority", "weighted", "sjf", "aging")

__all__ = ["POLICIES", "STUDY_POLICIES", "Policy", "make_policy"]
