"""Mooncake (FAST'25) JSONL reader: ``timestamp`` (ms from trace start), ``input_length``,
``output_length``, ``hash_ids`` (prefix-block hashes, 512-token blocks).

``hash_ids`` become the ``prefix`` column (``512:ID ID ...``), which the simulator's prefix
caching reads (``enable_prefix_caching``, docs/model.md). Kept extras: ``x_hash_blocks``
(number of prefix blocks) and ``x_first_hash`` (the first block id, a cheap key for grouping).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from driftsched.traces.importers import RawTrace, require_columns
from driftsched.traces.schema import format_prefix
from driftsched.traces.sources import read_jsonl, source_floats, source_ints

COLUMNS = ["timestamp", "input_length", "output_length"]
#: tokens per Mooncake hash block
HASH_BLOCK_TOKENS = 512


def read_mooncake(path) -> RawTrace:
    table = read_jsonl(path)
    require_columns(pd.DataFrame(columns=table.column_names), path, COLUMNS, "Mooncake JSONL")
    frame = pd.DataFrame(
        {
            "arrival_s": source_floats(table["timestamp"], path, "timestamp") / 1000.0,
            "prompt_tokens": source_ints(table["input_length"], path, "input_length"),
            "output_tokens": source_ints(table["output_length"], path, "output_length"),
        }
    )
    if "hash_ids" in table.column_names:
        hashes = table["hash_ids"]
        blocks = pc.list_value_length(hashes).fill_null(0).to_numpy()
        first = np.full(len(frame), -1, dtype=np.int64)
        first[blocks > 0] = pc.list_flatten(pc.list_slice(hashes, 0, 1)).to_numpy()
        frame["x_hash_blocks"] = blocks
        frame["x_first_hash"] = first
        frame["prefix"] = np.array(
            [format_prefix(HASH_BLOCK_TOKENS, ids) for ids in hashes.to_pylist()], dtype=object
        )
    return RawTrace(frame)
