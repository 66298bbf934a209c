"""Traces: the request tables every part of driftsched runs on.

- :mod:`~driftsched.traces.schema`: the versioned schema and its validation.
- :mod:`~driftsched.traces.trace`: :class:`Trace` and Parquet/CSV I/O.
- :mod:`~driftsched.traces.generators`: the registry of synthetic generators.
- :mod:`~driftsched.traces.importers`: the registry of real-trace importers.
- :mod:`~driftsched.traces.describe`: summary statistics and a plot.
"""

from driftsched.traces.schema import SCHEMA_VERSION, TraceSchemaError, tier_rank
from driftsched.traces.trace import Trace, read_trace

__all__ = ["SCHEMA_VERSION", "Trace", "TraceSchemaError", "read_trace", "tier_rank"]
