"""driftsched.sim: the discrete-event simulator of a multi-tenant gateway in front of vLLM.

- :mod:`.request`: what policies and correctors may see (never the true length)
- :mod:`.policies`, :mod:`.correctors`: the registries of gateway policies and drift correctors
- :mod:`.gateway`: admission, queueing, feedback (shared with the live gateway)
- :mod:`.engine`, :mod:`.fastengine`: vLLM V1's scheduler as a pure state machine
- :mod:`.costmodel`: step-time profiles; :mod:`.simulation`: the SimPy driver
- :mod:`.metrics`, :mod:`.result`, :mod:`.plots`: records, summaries, files and figures
"""

from driftsched.sim.config import SimConfig
from driftsched.sim.result import SimResult
from driftsched.sim.simulation import simulate

__all__ = ["SimConfig", "SimResult", "simulate"]
