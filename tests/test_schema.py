"""Trace schema validation: one clear message per problem, naming file, row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from driftsched.traces import Trace, TraceSchemaError, read_trace, tier_rank
from hypothesis import given, settings
from hypothesis import strategies as st

from driftsched.ground.errors import InputError
from tests.conftest import make_frame, run_cli


def problems(frame, source="t.csv") -> list[str]:
    with pytest.raises(TraceSchemaError) as info:
        Trace.from_frame(frame, source)
    return info.value.lines()


def test_valid_frame_normalises_dtypes():
    trace = Trace.from_frame(make_frame())
    dtypes = trace.frame.dtypes.astype(str).to_dict()
    assert dtypes["prompt_tokens"] == "int64" and dtypes["arrival_s"] == "float64"
    assert dtypes["tenant"] == "category" and dtypes["request_id"] == "string"
    assert list(trace.frame.columns)[:3] == ["request_id", "arrival_s", "tenant"]


def test_missing_column_is_named():
    (msg,) = problems(make_frame().drop(columns=["max_tokens"]))
    assert msg.startswith("t.csv: missing column 'max_tokens'; required: request_id")


def test_extra_column_is_named_and_x_prefixed_extras_are_allowed():
    (msg,) = problems(make_frame(colour=["red"] * 5))
    assert "unexpected column 'colour'" in msg and "'x_*'" in msg
    assert "x_model" in Trace.from_frame(make_frame(x_model=["m"] * 5)).frame.columns


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        (
            "prompt_tokens",
            [1, 2, "abc", 4, 5],
            "row 3, column 'prompt_tokens': expected an integer, got 'abc'",
        ),
        (
            "prompt_tokens",
            [1, 2, 3.5, 4, 5],
            "row 3, column 'prompt_tokens': expected an integer, got 3.5",
        ),
        (
            "arrival_s",
            [0, 1, "soon", 3, 4],
            "row 3, column 'arrival_s': expected a number, got 'soon'",
        ),
        ("arrival_s", [0, 1, np.nan, 3, 4], "row 3, column 'arrival_s': missing value (NaN)"),
        ("output_tokens", [1, 0, 3, 4, 5], "row 2, column 'output_tokens': expected >= 1, got 0"),
        ("prompt_tokens", [1, 2, 3, -4, 5], "row 4, column 'prompt_tokens': expected >= 1, got -4"),
        (
            "output_tokens",
            [1, 2, 3, 4, 65],
            "row 5, column 'output_tokens': output_tokens 65 exceeds max_tokens 64",
        ),
        (
            "arrival_s",
            [0, 1, 2, 1.5, 4],
            "row 4, column 'arrival_s': timestamps decrease: 1.5 after 2.0",
        ),
        ("arrival_s", [-1, 1, 2, 3, 4], "row 1, column 'arrival_s': expected >= 0, got -1.0"),
        (
            "request_id",
            ["a", "b", "c", "b", "e"],
            "row 4, column 'request_id': duplicate request_id 'b' (first seen on row 2)",
        ),
        (
            "tier",
            ["premium", "gold", "batch", "1", "2"],
            "row 2, column 'tier': expected premium, standard, batch or an integer priority, "
            "got 'gold'",
        ),
        (
            "tenant",
            ["a", None, "b", "c", "d"],
            "row 2, column 'tenant': expected a non-empty string",
        ),
        ("arrival_s", [0, 1, np.inf, 3, 4], "row 3, column 'arrival_s': expected a finite number"),
    ],
)
def test_each_bad_value_gives_one_precise_problem(column, values, expected):
    (msg,) = problems(make_frame(**{column: values}))
    assert msg.startswith(f"t.csv, {expected}"), msg


def test_slo_columns_are_optional_but_positive():
    ok = Trace.from_frame(make_frame(ttft_slo_s=[1.0, np.nan, 2, 2, 2]))
    assert np.isnan(ok.frame["ttft_slo_s"].iloc[1])
    (msg,) = problems(make_frame(e2e_slo_s=[1, 2, 0, 1, 1]))
    assert "row 3, column 'e2e_slo_s': expected > 0 or empty" in msg


def test_prefix_column_is_optional_and_its_form_checked(tmp_path):
    from driftsched.traces.schema import parse_prefix

    ok = Trace.from_frame(make_frame(prefix=["512:0 1 2", "", None, "16:7", "16:"]))
    assert [parse_prefix(p) for p in ok.frame["prefix"]] == [
        (512, (0, 1, 2)), None, None, (16, (7,)), (16, ()),
    ]  # fmt: skip
    (msg,) = problems(make_frame(prefix=["512:0 1", "512:0,1", "x", "0:1", "16:1"]))
    assert (
        "row 2, column 'prefix': expected CHUNK_TOKENS:ID ID ... (e.g. '512:0 17 18'), "
        "got '512:0,1' (3 rows like this)" in msg
    )
    path = ok.write(tmp_path / "p.csv")
    assert read_trace(path).frame["prefix"].tolist()[0] == "512:0 1 2"


def test_every_problem_is_reported_and_str_is_one_line():
    frame = make_frame(output_tokens=[0, 2, 3, 4, 5], request_id=["a", "a", "b", "c", "d"])
    with pytest.raises(TraceSchemaError) as info:
        Trace.from_frame(frame, "f.parquet")
    assert len(info.value.problems) == 2
    assert "\n" not in str(info.value) and str(info.value).endswith("(and 1 more problem)")


def test_repeated_problem_counts_rows():
    (msg,) = problems(make_frame(output_tokens=[0, 0, 0, 4, 5]))
    assert "(3 rows like this)" in msg


def test_tier_rank():
    assert [tier_rank(t) for t in ("premium", "standard", "batch", "7", 0)] == [1, 2, 3, 7, 0]
    with pytest.raises(ValueError):
        tier_rank("gold")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_round_trip(tmp_path, suffix):
    trace = Trace.from_frame(make_frame(7, prompt=["hi"] * 7), source="test", seed=3)
    path = trace.write(tmp_path / f"t{suffix}")
    back = read_trace(path)
    pd.testing.assert_frame_equal(back.frame, trace.frame)
    if suffix == ".parquet":
        assert back.meta["seed"] == 3 and back.meta["schema_version"] == 1


def test_csv_errors_name_file_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    make_frame(prompt_tokens=[1, 2, 0, 4, 5]).to_csv(path, index=False)
    with pytest.raises(TraceSchemaError, match=r"bad.csv, row 3, column 'prompt_tokens'"):
        read_trace(path)


def test_unknown_schema_version_is_rejected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(make_frame(), preserve_index=False)
    table = table.replace_schema_metadata({b"driftsched.trace": b'{"schema_version": 99}'})
    pq.write_table(table, tmp_path / "v99.parquet")
    with pytest.raises(InputError, match="schema version 99 is not supported; expected 1"):
        read_trace(tmp_path / "v99.parquet")


def test_unreadable_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_trace(tmp_path / "nope.parquet")
    with pytest.raises(InputError, match="unknown trace format"):
        read_trace(tmp_path / "x.txt")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="junk.parquet: cannot read as parquet"):
        read_trace(tmp_path / "junk.parquet")


def test_cli_prints_one_line_exit_2_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    make_frame(output_tokens=[1, 2, 3, 4, 99]).to_csv(bad, index=False)
    result = run_cli("traces", "validate", bad)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "row 5, column 'output_tokens': output_tokens 99 exceeds max_tokens 64" in result.stderr


def test_failed_convert_leaves_existing_output_untouched(tmp_path):
    bad, out = tmp_path / "bad.csv", tmp_path / "out.csv"
    make_frame(prompt_tokens=[0, 1, 2, 3, 4]).to_csv(bad, index=False)
    out.write_text("precious")
    result = run_cli("traces", "convert", bad, out)
    assert result.returncode == 2
    assert out.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.csv",
        "out.csv",
    ]


rows = st.integers(1, 30)


@settings(max_examples=40, deadline=None)
@given(n=rows, data=st.data())
def test_any_valid_trace_round_trips_csv_and_parquet(tmp_path_factory, n, data):
    gaps = data.draw(st.lists(st.floats(0, 10, allow_nan=False), min_size=n, max_size=n))
    out = data.draw(st.lists(st.integers(1, 5000), min_size=n, max_size=n))
    extra = data.draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    tiers = data.draw(
        st.lists(st.sampled_from(["premium", "standard", "batch", "4"]), min_size=n, max_size=n)
    )
    frame = make_frame(
        n,
        arrival_s=np.cumsum(gaps),
        output_tokens=out,
        tier=tiers,
        max_tokens=np.asarray(out) + np.asarray(extra),
        tenant=[f"t{i % 3}" for i in range(n)],
    )
    trace = Trace.from_frame(frame)
    folder = tmp_path_factory.mktemp("rt")
    for name in ("a.parquet", "a.csv"):
        back = read_trace(trace.write(folder / name))
        pd.testing.assert_frame_equal(back.frame, trace.frame, check_categorical=False)
