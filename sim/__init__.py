"""driftsched.sim: the discrete-event simulator of a multi-tenant gateway in front of vLLM.

- :mod:`.request`: what policies and correctors may see (never the true length)
- :mod:`.policies`, :mod:`.correctors`: the registries of gateway policies and drift correctors
- :mod:`.gateway`: admission, queueing, feedback (shared with the live gateway)
- :mod:`.engine`, :mod:`.fastengine`: vLLM V1's scheduler as a pure state machine
- :mod:`.costmodel`: step-time profiles; :mod:`.simulation`: the SimPy driver
- :mod:`.metrics`, :mod:`.result`, :mod:`.plots`: records, summaries, files and figures
"""

from driftsched.ground.lazy import lazy_exports

__all__ = ["SimConfig", "SimResult", "simulate"]

#: name -> module of this package's exports, imported on first use (PEP 562): importing any
#: ``driftsched.sim.<module>`` then does not pull pandas and SimPy in (a CLI's --help stays fast)
_EXPORTS = {
    "SimConfig": "driftsched.sim.config",
    "SimResult": "driftsched.sim.result",
    "simulate": "driftsched.sim.simulation",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)
