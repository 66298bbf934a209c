"""The gateway: admission (estimate + job class), the policy queue, and feedback on finish.

Pure and clock-free: callers pass ``now_s``. The simulator and the live gateway (validate) both
drive this class, so one implementation of every policy and corrector serves both.
"""

from __future__ import annotations

from collections import Counter

from driftsched.sim.correctors import Corrector
from driftsched.sim.jobclass import JobClassConfig
from driftsched.sim.policies import Policy
from driftsched.sim.request import Admission, RequestView


class Gateway:
    def __init__(self, policy: Policy, corrector: Corrector, job_classes: JobClassConfig):
        self.policy, self.corrector, self.job_classes = policy, corrector, job_classes
        self.depth_by_tier: Counter[str] = Counter()
        self._seq = 0

    @classmethod
    def from_config(cls, config, truth) -> Gateway:
        """The gateway a :class:`~driftsched.sim.config.SimConfig` describes; ``truth`` (trace
        row -> true output tokens) is handed to the oracle corrector only."""
        from driftsched.sim.correctors import make_corrector
        from driftsched.sim.policies import make_policy

        return cls(
            make_policy(config.policy, config.policy_params),
            make_corrector(
                config.corrector, config.corrector_params, truth=lambda i: int(truth[i])
            ),
            config.job_classes,
        )

    def admit(self, adm: Admission, now_s: float) -> RequestView:
        """Estimate, classify and queue ``adm``; return the view the policy holds."""
        estimate = int(self.corrector.estimate(adm))
        if estimate < 1:
            raise ValueError(f"corrector {self.corrector.name} estimated {estimate} < 1 tokens")
        view = RequestView(  # the admission's fields, in order, then the gateway's
            *adm, estimate, self.job_classes.classify(adm.prompt_tokens, estimate), self._seq
        )
        self._seq += 1
        self.policy.push(view)
        self.depth_by_tier[adm.tier] += 1
        return view

    def next(self, now_s: float) -> RequestView | None:
        """The policy's next request to dispatch, or ``None`` when the queue is empty."""
        view = self.policy.pop(now_s)
        if view is not None:
            self.depth_by_tier[view.tier] -= 1
        return view

    def finished(self, adm: Admission, actual_tokens: int) -> None:
        """Feed a finished request's true output length back to the corrector."""
        self.corrector.observe(adm, actual_tokens)

    def __len__(self) -> int:
        return len(self.policy)
