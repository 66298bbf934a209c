"""``validate run --via http`` on a real ``vllm serve`` (vLLM's OpenAI server, its engine
core in its own process, the tiny model with the word tokenizer of calibrate/tinymodel.py)
behind ``gateway serve``: the deployment path, HTTP included, in the fidelity report. Not
timing-gated (CI runs it in the background beside other work): every request must go through
the gateway and the server, be recorded, and be paired with the simulator's; the errors are
printed (docs/serve.md has quiet-machine figures)."""

from __future__ import annotations

from tests.simkit import LIVE_VLLM

pytestmark = LIVE_VLLM


def test_validate_via_http_on_vllm_serve(tmp_path):
    from driftsched.validate.runner import ValidateSettings, run
    from driftsched.validate.scenario import Grid

    grid = Grid(policies=["sjf"], correctors=["ewma"], modes=["continuous", "microbatch"],
                loads=[1.0], requests=80, scenarios=2)  # fmt: skip
    settings = ValidateSettings(profile="cpu-tiny-llama", grid=grid, via="http",
                                speed_check_steps=0)  # fmt: skip
    report = run(tmp_path, settings)
    assert report["status"] == "complete" and report["via"] == "http"
    assert report["vllm_server_started"] is True and report["num_gpu_blocks"] > 100
    for row in report["scenarios"]:
        print(
            f"{row['key']}: E2E P50 live {row['e2e_p50_live_s']:.3f} s, sim "
            f"{row['e2e_p50_sim_s']:.3f} s (error {row['e2e_p50_rel_error']:.1%}); P99 error "
            f"{row['e2e_p99_rel_error']:.1%}; TTFT P50 error {row['ttft_p50_rel_error']:.1%}"
        )
        assert row["status"] == "complete", row["error"]
        assert row["live_finished"] == row["compared"] == 80
        assert row["gateway_outcomes"] == {"finished": 80}
    assert (tmp_path / "vllm-serve.log").stat().st_size > 0
