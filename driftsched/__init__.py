"""driftsched: simulate, calibrate and validate multi-tenant LLM scheduling under token drift.

The public Python API (stable names; everything else is internal)::

    import driftsched as ds
    trace = ds.generate_trace("driftsched-paper", requests=3000, seed=0)
    trace = ds.import_trace("azure", "AzureLLMInferenceTrace_conv.csv", tenants="uniform:4")
    trace = ds.read_trace("paper.parquet"); trace.write("paper.csv")
    ds.describe_trace(trace).by_tenant
    ds.reproduce_paper().deltas()                       # the study, side by side
    ds.run_sweep(ds.SweepSpec(rates_per_s=[2, 4], policies=["fifo", "sjf"]), "out/sweep")
    ds.CapacitySearch(ds.Workload(), {"policy": "sjf"}, ds.parse_slos("p99_e2e<=10s"), [0])
    ds.write_report("out/sweep")                        # one HTML page
"""

from importlib import import_module

from driftsched.ground.compiled import honour_pure_switch
from driftsched.ground.errors import DriftschedError, InputError, UnknownNameError

honour_pure_switch()  # DRIFTSCHED_PURE=1: the simulator's .py sources, not its compiled build

#: public name -> (module, attribute); imported on first use (PEP 562), so ``import driftsched``
#: and the CLI start without loading pandas, scipy or matplotlib until a command needs them
_LAZY = {
    "write_report": ("driftsched.sim.studies.report", "write_report"),
    "CapacitySearch": ("driftsched.sim.studies.capacity", "CapacitySearch"),
    "parse_slos": ("driftsched.sim.studies.slo", "parse_slos"),
    "compare": ("driftsched.sim.studies.compare", "compare"),
    "SimConfig": ("driftsched.sim.config", "SimConfig"),
    "load_profile": ("driftsched.sim.profile", "load_profile"),
    "reproduce_paper": ("driftsched.sim.studies.paper", "reproduce"),
    "simulate": ("driftsched.sim.simulation", "simulate"),
    "SweepSpec": ("driftsched.sim.studies.sweep", "SweepSpec"),
    "run_sweep": ("driftsched.sim.studies.sweep", "run_sweep"),
    "Workload": ("driftsched.sim.studies.workload", "Workload"),
    "describe_trace": ("driftsched.traces.describe", "summarise"),
    "GENERATORS": ("driftsched.traces.generators", "GENERATORS"),
    "generate_trace": ("driftsched.traces.generators", "generate"),
    "import_trace": ("driftsched.traces.importers", "import_trace"),
    "Trace": ("driftsched.traces.trace", "Trace"),
    "read_trace": ("driftsched.traces.trace", "read_trace"),
}


def __getattr__(name: str):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'driftsched' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = ["DriftschedError", "InputError", "UnknownNameError", *_LAZY]
