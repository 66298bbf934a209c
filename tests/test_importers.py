"""Importers on small fixtures written here, and on the real traces in ../shared when present."""

from __future__ import annotations

import json

import numpy as np
import pytest
from driftsched.traces.assign import (
    TenantRule,
    assign_tiers,
    categories_from_output,
    max_tokens_for,
)
from driftsched.traces.importers import import_trace

from driftsched.ground.errors import InputError, UnknownNameError
from tests.conftest import run_cli

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:51.0000000,879,0
2023-11-16 18:16:01.5000000,100,300
2023-11-16 18:16:47.0000000,50,600
"""

BURST = """Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
45,ChatGPT,1087,0,1087,Conversation log
118,GPT-4,417,217,634,Conversation log
138,ChatGPT,1360,300,1660,API log
"""


@pytest.fixture
def azure_csv(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text(AZURE)
    return path


def test_azure_seconds_from_first_row_and_zero_rows_dropped(azure_csv):
    tr = import_trace("azure", azure_csv, category_noise=0.0, tenants="uniform:1")
    f = tr.frame
    assert np.allclose(f["arrival_s"], [0.0, 4.314579, 14.81941, 60.31941])
    assert f["prompt_tokens"].tolist() == [374, 396, 100, 50]
    assert tr.meta["dropped_rows"] == {"zero_output_tokens": 1}
    assert f["x_source_row"].tolist() == [1, 2, 4, 5]
    assert f["category"].tolist() == ["short_qa", "summary", "technical", "report"]
    assert f["max_tokens"].tolist() == [64, 128, 512, 1024]


def test_azure_2024_style_timestamps_with_zone(tmp_path):
    path = tmp_path / "a24.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-05-10 00:00:00.009930+00:00,2162,5\n"
        "2024-05-10 00:00:01.509930+00:00,10,6\n"
    )
    assert np.allclose(import_trace("azure", path).frame["arrival_s"], [0, 1.5])


def test_window_sample_limit_and_rate_scale(azure_csv):
    f = import_trace("azure", azure_csv, start_s=4.0, duration_s=20.0).frame
    assert np.allclose(f["arrival_s"], [0.314579, 10.81941])
    f = import_trace("azure", azure_csv, rate_scale=2.0).frame
    assert np.allclose(f["arrival_s"].iloc[-1], 60.31941 / 2)
    assert len(import_trace("azure", azure_csv, limit=2)) == 2
    a = import_trace("azure", azure_csv, sample=0.5, seed=1).frame["x_source_row"].tolist()
    assert a == import_trace("azure", azure_csv, sample=0.5, seed=1).frame["x_source_row"].tolist()
    with pytest.raises(InputError, match="no requests left"):
        import_trace("azure", azure_csv, start_s=1000)


def test_burstgpt_drops_failures_and_uses_model_as_tenant(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(BURST)
    tr = import_trace("burstgpt", path)
    assert tr.meta["dropped_rows"] == {"failed_zero_response": 1}
    f = tr.frame
    assert f["tenant"].tolist() == ["ChatGPT", "GPT-4", "ChatGPT"]
    # busiest tenant takes the first listed tier
    assert dict(zip(f["tenant"], f["tier"], strict=True)) == {
        "ChatGPT": "premium",
        "GPT-4": "standard",
    }
    joined = import_trace("burstgpt", path, tenants="column:x_model+x_log_type").frame
    assert joined["tenant"].iloc[-1] == "ChatGPT/API log"
    with pytest.raises(InputError, match="no source column 'x_region'"):
        import_trace("burstgpt", path, tenants="column:x_region")


def test_mooncake_ms_timestamps_and_hash_extras(tmp_path):
    path = tmp_path / "m.jsonl"
    rows = [
        {"timestamp": 0, "input_length": 600, "output_length": 10, "hash_ids": [4, 5]},
        {"timestamp": 1500, "input_length": 20, "output_length": 700, "hash_ids": []},
        {"timestamp": 2500, "input_length": 30, "output_length": 3, "hash_ids": [9]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    f = import_trace("mooncake", path).frame
    assert f["arrival_s"].tolist() == [0.0, 1.5, 2.5]
    assert f["x_hash_blocks"].tolist() == [2, 0, 1]
    assert f["x_first_hash"].tolist() == [4, -1, 9]


def test_missing_source_columns_and_bad_files(tmp_path, azure_csv):
    with pytest.raises(InputError, match="missing column 'TIMESTAMP'; expected Azure"):
        path = tmp_path / "b.csv"
        path.write_text(BURST)
        import_trace("azure", path)
    with pytest.raises(UnknownNameError, match="unknown importer 'splunk'"):
        import_trace("splunk", azure_csv)
    with pytest.raises(InputError, match="no such file"):
        import_trace("mooncake", tmp_path / "none.jsonl")
    with pytest.raises(InputError, match="field 'tiers'|tier rule"):
        import_trace("azure", azure_csv, tiers="premium")


def write_servegen(folder, with_dataset=(0, 1)):
    folder.mkdir()
    for c, rate in ((0, 2.0), (1, 0.5), (2, 1.0)):
        lines = [
            f"{w * 600},{rate},{1.0 + c},{'Gamma' if c != 2 else 'Weibull'},1,1" for w in range(4)
        ]
        lines.append("2400,0,,,,")
        (folder / f"chunk-{c}-trace.csv").write_text("\n".join(lines) + "\n")
        if c in with_dataset:
            pmf = {
                "input_tokens": str({10 * (c + 1): 0.5, 20 * (c + 1): 0.5}),
                "output_tokens": str({5 + c: 1.0}),
            }
            (folder / f"chunk-{c}-dataset.json").write_text(
                json.dumps({"0": pmf, "21600": {"input_tokens": "{}", "output_tokens": "{}"}})
            )


def test_servegen_clients_rates_and_lengths(tmp_path):
    folder = tmp_path / "sg"
    write_servegen(folder)
    tr = import_trace("servegen", folder, clients="top:2", duration_s=2400, seed=3)
    f = tr.frame
    assert tr.meta["clients"] == ["client-0", "client-2"]
    assert tr.meta["pooled_length_clients"] == ["client-2"]
    counts = f["tenant"].value_counts()
    # expected 2.0 * 2400 = 4800 and 1.0 * 2400 = 2400 requests
    assert abs(counts["client-0"] - 4800) < 4 * np.sqrt(4800)
    assert abs(counts["client-2"] - 2400) < 5 * np.sqrt(2400) * 3
    c0 = f[f["tenant"] == "client-0"]
    assert set(c0["prompt_tokens"]) == {10, 20} and set(c0["output_tokens"]) == {5}
    c2 = f[f["tenant"] == "client-2"]
    assert set(c2["output_tokens"]) <= {5, 6}  # pooled from the selected clients with data
    gaps0 = np.diff(c0["arrival_s"].to_numpy())
    assert abs(gaps0.std() / gaps0.mean() - 1.0) < 0.15


def test_servegen_guards(tmp_path):
    folder = tmp_path / "sg"
    write_servegen(folder, with_dataset=())
    with pytest.raises(InputError, match="none of the chosen clients has"):
        import_trace("servegen", folder)
    with pytest.raises(InputError, match="no client 7"):
        import_trace("servegen", folder, clients="7")
    with pytest.raises(InputError, match="max_requests"):
        import_trace("servegen", folder, max_requests=10)
    with pytest.raises(InputError, match="not a folder"):
        import_trace("servegen", tmp_path / "missing")


def test_assignment_rules():
    rng = np.random.default_rng(0)
    assert categories_from_output(
        np.array([1, 64, 65, 256, 257, 384, 385, 9999]), rng
    ).tolist() == [
        "short_qa",
        "short_qa",
        "summary",
        "summary",
        "technical",
        "technical",
        "report",
        "report",
    ]
    noisy = categories_from_output(np.full(20_000, 10), np.random.default_rng(1), noise=0.2)
    assert abs((noisy != "short_qa").mean() - 0.2) < 0.01
    out = np.array([1, 16, 17, 300, 600])
    cats = np.array(["short_qa", "short_qa", "summary", "technical", "report"], dtype=object)
    assert max_tokens_for(out, cats, "pow2").tolist() == [16, 16, 32, 512, 1024]
    assert max_tokens_for(out, cats, "cap").tolist() == [64, 64, 256, 384, 600]
    assert max_tokens_for(out, cats, "output").tolist() == out.tolist()
    tenants = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"], dtype=object)
    tiers = assign_tiers(tenants, "premium=1,standard=2,batch=1")
    assert dict(zip(tenants, tiers, strict=True)) == {
        "a": "premium",
        "b": "standard",
        "c": "standard",
        "d": "batch",
    }
    rule = TenantRule.parse("weights:x=3,y=1")
    got = rule.apply(np.zeros(40_000), np.random.default_rng(2))
    assert abs((got == "x").mean() - 0.75) < 0.01
    for bad in ("uniform:0", "weights:", "column:", "roll:3"):
        with pytest.raises(InputError):
            TenantRule.parse(bad)


# --- the real traces, when ../shared/traces is present ------------------------------------


def test_real_azure_conv(shared_traces):
    tr = import_trace("azure", shared_traces / "azure_2023/AzureLLMInferenceTrace_conv.csv")
    assert len(tr) == 19_366 and abs(tr.span_s - 3501.72) < 0.01
    assert abs(tr.frame["output_tokens"].median() - 129) < 1


def test_real_azure_code(shared_traces):
    tr = import_trace("azure", shared_traces / "azure_2023/AzureLLMInferenceTrace_code.csv")
    assert len(tr) == 8_819


def test_real_burstgpt_slices(shared_traces):
    tr = import_trace("burstgpt", shared_traces / "burstgpt/burstgpt_slice.csv")
    assert len(tr) == 383 and tr.meta["dropped_rows"] == {"failed_zero_response": 17}
    assert tr.frame["output_tokens"].median() == 238
    tr3 = import_trace(
        "burstgpt", shared_traces / "burstgpt/burstgpt3_slice.csv", tenants="column:x_session_id"
    )
    # 134 sessions, plus "unknown" for the API-log rows that have no session
    assert tr3.frame["tenant"].nunique() == 135 and "unknown" in set(tr3.frame["tenant"])


def test_real_mooncake(shared_traces):
    tr = import_trace("mooncake", shared_traces / "mooncake/conversation_trace.jsonl")
    assert len(tr) == 12_031 and tr.span_s == 3536.999
    assert abs(tr.frame["x_hash_blocks"].mean() - 24.0) < 0.05


def test_real_servegen_deepseek(shared_traces):
    folder = shared_traces / "servegen/reason/deepseek-r1"
    tr = import_trace("servegen", folder, clients="top:5", duration_s=1800, rate_scale=0.5)
    assert tr.frame["tenant"].nunique() == 5 and tr.meta["pooled_length_clients"] == []
    assert 0 < tr.span_s <= 1800 * 2


def test_cli_import_real_trace(shared_traces, tmp_path):
    out = tmp_path / "azure.parquet"
    result = run_cli(
        "traces",
        "import",
        "azure",
        shared_traces / "azure_2023/AzureLLMInferenceTrace_code.csv",
        "-o",
        out,
        "--tenants",
        "uniform:4",
        "--duration-s",
        "600",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and out.exists()
