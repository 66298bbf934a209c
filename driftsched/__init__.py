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

from driftsched.errors import DriftschedError, InputError, UnknownNameError
from driftsched.report import write_report
from driftsched.sim.capacity import CapacitySearch, parse_slos
from driftsched.sim.compare import compare
from driftsched.sim.config import SimConfig
from driftsched.sim.costmodel import load_profile
from driftsched.sim.paper import reproduce as reproduce_paper
from driftsched.sim.simulation import simulate
from driftsched.sim.sweep import SweepSpec, run_sweep
from driftsched.sim.workload import Workload
from driftsched.traces.describe import summarise as describe_trace
from driftsched.traces.generators import GENERATORS
from driftsched.traces.generators import generate as generate_trace
from driftsched.traces.importers import import_trace
from driftsched.traces.trace import Trace, read_trace

__version__ = "0.1.0"

__all__ = [
    "CapacitySearch",
    "GENERATORS",
    "SweepSpec",
    "Workload",
    "parse_slos",
    "run_sweep",
    "write_report",
    "DriftschedError",
    "InputError",
    "SimConfig",
    "Trace",
    "UnknownNameError",
    "compare",
    "load_profile",
    "simulate",
    "describe_trace",
    "generate_trace",
    "import_trace",
    "read_trace",
    "reproduce_paper",
]
