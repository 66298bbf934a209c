"""One engine replica as the SimPy driver holds it: the engine, its dispatcher slot, the events
its processes wait on, and the driver's counters."""

from __future__ import annotations

import simpy
from driftsched.sim.dispatcher import ReplicaSlot
from driftsched.sim.engine import Engine, ReferenceEngine
from driftsched.sim.fastengine import FastEngine

#: ``engine_impl`` -> engine class (both implement :class:`~driftsched.sim.engine.Engine`)
ENGINES: dict[str, type] = {"fast": FastEngine, "reference": ReferenceEngine}


class Replica:
    """One engine replica: its engine, its dispatcher slot, and the driver's counters."""

    def __init__(self, replica_id: int, engine: Engine, env: simpy.Environment):
        self.replica_id, self.engine = replica_id, engine
        self.slot = ReplicaSlot(replica_id, engine.pool, engine)
        self.wake = env.event()  # the engine loop waits on it while the engine is idle
        self.batch_done = env.event()  # microbatch: the batcher waits on it
        self.events = self.steps = 0  # engine iterations; engine steps simulated
        self.busy_s = 0.0
        # the engine event in progress (the driver's): its plan, steps and seconds, and once
        # applied its outcome
        self.plan, self.run_steps, self.run_s, self.outcome = None, 0, 0.0, None
