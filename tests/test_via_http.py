"""``validate run --via http``: the deployment path — ``gateway serve`` in front of an
OpenAI server, the trace over HTTP — in the fidelity report. Here the upstream is ``engine
serve`` (the simulator's own engine model, paced in real time), so the run needs no vLLM; the
real ``vllm serve`` runs in tests/test_live_via_http.py. Not timing-gated here: it checks that
every request went through, was recorded and paired with the simulator's."""

from __future__ import annotations

import json

from driftsched.sim.profile import load_profile
from driftsched.validate.scenario import Grid
from driftsched.validate.serve.engine_app import engine_app
from driftsched.validate.serve.server import Background
from driftsched.validate.serve.via_http import server_flags


def test_engine_arguments_become_server_flags():
    args = {"model": "/m", "dtype": "float32", "max_num_seqs": 64, "skip_tokenizer_init": True,
            "enable_prefix_caching": False, "enforce_eager": True, "seed": 0}  # fmt: skip
    assert server_flags(args) == [
        "--dtype", "float32", "--max-num-seqs", "64", "--enforce-eager", "--seed", "0",
    ]  # fmt: skip


def test_validate_via_http_pairs_every_request_with_the_simulator(tmp_path):
    from driftsched.validate.runner import ValidateSettings, run

    grid = Grid(policies=["sjf", "fifo"], correctors=["ewma"], modes=["continuous", "microbatch"],
                loads=[0.8], requests=30, scenarios=2)  # fmt: skip
    with Background(engine_app(load_profile("cpu-tiny-llama"))) as engine:
        settings = ValidateSettings(
            profile="cpu-tiny-llama", grid=grid, via="http", upstream=engine.url,
            speed_check_steps=0, warmup_steps=0,
        )  # fmt: skip
        report = run(tmp_path, settings)
    assert report["status"] == "complete" and report["via"] == "http"
    assert report["vllm_server_started"] is False
    for row in report["scenarios"]:
        assert row["status"] == "complete", row["error"]
        assert row["live_finished"] == row["compared"] == 30
        assert row["gateway_outcomes"] == {"finished": 30}
        print(row["key"], f"E2E P50 error {row['e2e_p50_rel_error']:.2%}")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["settings"]["via"] == "http"
