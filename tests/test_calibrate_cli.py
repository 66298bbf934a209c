"""``driftsched calibrate`` commands that need no vLLM: prior, show, tiny-model, fit, errors."""

from __future__ import annotations

import json

import pytest
from driftsched.calibrate.prior import derive_prior
from driftsched.sim.profile import load_profile

from driftsched.ground.errors import InputError
from tests.conftest import run_cli


def test_prior_command_regenerates_the_bundled_profile(tmp_path):
    out = tmp_path / "l4.json"
    r = run_cli(
        "calibrate",
        "prior",
        "--gpu",
        "L4",
        "--model",
        "Qwen/Qwen1.5-1.8B-Chat",
        "-o",
        out,
        "--name",
        "l4-qwen1.5-1.8b-prior",
        "--enforce-eager",
    )
    assert r.returncode == 0, r.stderr
    assert "PRIOR" in r.stdout and "fitted-v2" in r.stdout
    assert load_profile(out) == load_profile("l4-qwen1.5-1.8b-prior")


def test_prior_from_a_config_json(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "_name_or_path": "acme/small",
                "num_hidden_layers": 8,
                "hidden_size": 1024,
                "num_attention_heads": 8,
                "num_key_value_heads": 2,
                "intermediate_size": 4096,
                "vocab_size": 32000,
            }
        )
    )
    p = derive_prior("H100", str(cfg))
    assert p.provenance.model == "acme/small" and p.kind == "prior"
    with pytest.raises(InputError, match="unknown GPU 'TPU'"):
        derive_prior("TPU", str(cfg))


def test_show_bundled_measured_profile():
    r = run_cli("calibrate", "show", "cpu-tiny-llama")
    assert r.returncode == 0, r.stderr
    assert "measured" in r.stdout and "fit quality" in r.stdout and "vllm 0.32" in r.stdout
    prof = load_profile("cpu-tiny-llama")
    assert prof.fit_quality["held_out"]["all"]["mape"] < 0.10


def test_tiny_model_and_fit_errors(tmp_path):
    r = run_cli("calibrate", "tiny-model", tmp_path / "m")
    assert (
        r.returncode == 0
        and json.loads((tmp_path / "m/config.json").read_text())["num_hidden_layers"] == 4
    )
    r = run_cli("calibrate", "fit", tmp_path / "nothing", "-o", tmp_path / "p.json")
    assert r.returncode == 2 and "no recorded steps" in r.stderr
    assert not (tmp_path / "p.json").exists()


def test_gpu_telemetry_fails_clearly_without_a_gpu(tmp_path):
    from driftsched.calibrate.telemetry import GpuTelemetry

    with pytest.raises(InputError, match="nvidia-ml-py|no NVIDIA GPU"):
        GpuTelemetry(tmp_path / "t.parquet")


def test_profile_without_vllm_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    r = run_cli("calibrate", "profile", "--quick", "-o", tmp_path / "raw")
    assert r.returncode == 2 and "vLLM is not importable" in r.stderr
    assert "Traceback" not in r.stderr
