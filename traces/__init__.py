"""Traces: the request tables every part of driftsched runs on.

- :mod:`~driftsched.traces.schema`: the versioned schema and its validation.
- :mod:`~driftsched.traces.trace`: :class:`Trace` and Parquet/CSV I/O.
- :mod:`~driftsched.traces.generators`: the registry of synthetic generators.
- :mod:`~driftsched.traces.importers`: the registry of real-trace importers.
- :mod:`~driftsched.traces.describe`: summary statistics and a plot.
"""

from driftsched.ground.lazy import lazy_exports

__all__ = ["SCHEMA_VERSION", "Trace", "TraceSchemaError", "read_trace", "tier_rank"]

#: name -> module of this package's exports, imported on first use (PEP 562): importing a
#: light ``driftsched.traces.<module>`` then does not pull pandas and pyarrow in
_EXPORTS = {
    "SCHEMA_VERSION": "driftsched.traces.schema",
    "TraceSchemaError": "driftsched.traces.schema",
    "tier_rank": "driftsched.traces.schema",
    "Trace": "driftsched.traces.trace",
    "read_trace": "driftsched.traces.trace",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)
