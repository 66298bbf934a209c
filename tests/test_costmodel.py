"""Cost-model profiles: round trip, schema checks, the bundled L4 prior, the linear form."""

from __future__ import annotations

import json

import pytest
from driftsched.calibrate.prior import GPUS, derive_prior
from driftsched.sim.costmodel import BatchShape, CostModel, chunk_attention
from driftsched.sim.profile import bundled_profiles, load_profile

from driftsched.ground.errors import InputError, UnknownNameError
from tests.simkit import profile


def test_bundled_l4_prior_is_exactly_what_the_prior_command_derives():
    """The study's prior: fitted efficiencies, no CUDA graphs (the study ran enforce_eager)."""
    bundled = load_profile("l4-qwen1.5-1.8b-prior")
    derived = derive_prior(
        "L4", "Qwen/Qwen1.5-1.8B-Chat", enforce_eager=True, name="l4-qwen1.5-1.8b-prior"
    )
    assert bundled == derived
    assert bundled.kind == "prior" and "NOT MEASURED" in bundled.provenance.method
    assert "enforce_eager" in bundled.provenance.method and "fitted" in bundled.provenance.method
    assert bundled.provenance.details["cuda_graphs"] is False
    assert bundled.engine.gpu_memory_utilization == 0.70 and bundled.engine.max_model_len == 2048
    assert "l4-qwen1.5-1.8b-prior" in bundled_profiles()


def test_prior_magnitudes_are_plausible_for_an_l4():
    p = load_profile()
    m = CostModel(p)
    one = m.step_time(BatchShape(decode_requests=1, decode_context_tokens=300))
    assert 0.010 < one < 0.030  # ~60 tokens/s for one sequence of a 1.8B fp16 model
    full = m.step_time(
        BatchShape(
            prefill_tokens=2048, prefill_attention=chunk_attention(2048, 0), prefill_requests=1
        )
    )
    assert 0.05 < full < 0.3
    kv_tokens = p.engine.num_gpu_blocks * p.engine.block_size
    assert 40_000 < kv_tokens < 80_000  # ~11 GiB of KV at 192 KiB per token


@pytest.mark.parametrize("gpu", list(GPUS))
def test_every_gpu_in_the_table_gets_a_prior(gpu):
    p = derive_prior(gpu, "Qwen/Qwen1.5-1.8B-Chat")
    assert all(v > 0 for v in p.coefficients.values()) and p.engine.num_gpu_blocks > 128
    assert GPUS[gpu].source


#: parameter counts as each model card publishes them (billions)
PUBLISHED_PARAMS_B = {
    "meta-llama/Llama-3.1-8B-Instruct": 8.03,
    "meta-llama/Llama-3.1-70B-Instruct": 70.6,
    "meta-llama/Meta-Llama-3-70B-Instruct": 70.6,
    "meta-llama/Meta-Llama-3-8B-Instruct": 8.03,
    "mistralai/Mistral-7B-Instruct-v0.3": 7.25,
    "Qwen/Qwen2.5-0.5B-Instruct": 0.49,
    "Qwen/Qwen2.5-1.5B-Instruct": 1.54,
    "Qwen/Qwen2.5-3B-Instruct": 3.09,
    "Qwen/Qwen2.5-7B-Instruct": 7.61,
    "Qwen/Qwen3-0.6B": 0.6,
    "Qwen/Qwen3-1.7B": 1.7,
    "Qwen/Qwen3-4B": 4.0,
    "Qwen/Qwen3-8B": 8.2,
    "Qwen/Qwen1.5-1.8B-Chat": 1.8,
    "codellama/CodeLlama-34b-Instruct-hf": 34.0,
}


def test_the_model_table_matches_the_published_parameter_counts():
    """Each row's weights (layers, embeddings, LM head unless tied) against its model card: a
    wrong layer count, head count or tied flag moves the count by far more than 2.5%."""
    from driftsched.calibrate.prior import MODELS

    assert set(MODELS) == set(PUBLISHED_PARAMS_B)
    for name, arch in MODELS.items():
        billions = arch.weight_params() / 1e9
        assert billions == pytest.approx(PUBLISHED_PARAMS_B[name], rel=0.025), name


@pytest.mark.parametrize("model", sorted(PUBLISHED_PARAMS_B))
def test_every_model_in_the_table_gets_a_prior(model):
    """On H100s, over as few GPUs as hold it; bigger models read more weights per step."""
    for tp in (1, 2, 4, 8):
        try:
            p = derive_prior("H100", model, tensor_parallel=tp)
            break
        except InputError:
            continue
    assert all(v > 0 for v in p.coefficients.values()) and p.engine.num_gpu_blocks > 128
    assert p.provenance.model == model and p.kind == "prior"
    small = derive_prior("H100", "Qwen/Qwen2.5-0.5B-Instruct")
    assert p.coefficients["const"] * tp >= small.coefficients["const"] * 0.999


def test_faster_memory_means_faster_decode():
    shape = BatchShape(decode_requests=8, decode_context_tokens=8 * 500)
    times = {
        g: CostModel(derive_prior(g, "Qwen/Qwen1.5-1.8B-Chat")).step_time(shape)
        for g in ("L4", "A100-80GB", "H200")
    }
    assert times["L4"] > times["A100-80GB"] > times["H200"]


def test_step_time_is_the_linear_form():
    p = profile(0.5, per_token_s=0.01)
    assert CostModel(p).step_time(BatchShape(prefill_tokens=10, decode_requests=3)) == 0.6


def test_profile_round_trip_and_errors(tmp_path):
    p = profile(0.25)
    path = p.write(tmp_path / "p.json")
    assert load_profile(path) == p
    data = json.loads(path.read_text())
    data["schema_version"] = 7
    (tmp_path / "v7.json").write_text(json.dumps(data))
    with pytest.raises(
        InputError,
        match="v7.json: field 'schema_version': .*version 7 is not supported; expected 1",
    ):
        load_profile(tmp_path / "v7.json")
    data["schema_version"] = 1
    data["coefficients"]["warp_drive"] = 1.0
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown feature 'warp_drive'"):
        load_profile(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(InputError, match="junk.json: not valid JSON"):
        load_profile(tmp_path / "junk.json")
    with pytest.raises(UnknownNameError, match="unknown profile 'tpu-v9'"):
        load_profile("tpu-v9")
    with pytest.raises(InputError, match="no such profile file"):
        load_profile(tmp_path / "missing.json")


def test_engine_settings_must_be_consistent():
    with pytest.raises(ValueError, match="max_num_batched_tokens must be >= max_num_seqs"):
        profile(1.0, max_num_seqs=64, max_num_batched_tokens=32)
    with pytest.raises(ValueError, match="cannot hold one request"):
        profile(1.0, num_gpu_blocks=10, max_model_len=2048)


def test_tensor_parallel_prior_splits_the_work_and_pays_all_reduces():
    from driftsched.calibrate.prior import Efficiency

    model = "codellama/CodeLlama-34b-Instruct-hf"
    eff = Efficiency()
    one = derive_prior("H100", model, gpu_memory_utilization=0.9, efficiency=eff)
    two = derive_prior("H100", model, gpu_memory_utilization=0.9, tensor_parallel=2, efficiency=eff)
    c1, c2 = one.coefficients, two.coefficients
    for feature in ("prefill_tokens", "decode_context_tokens", "prefill_attention"):
        assert c2[feature] == pytest.approx(c1[feature] / 2, rel=1e-4)
    weights_1 = c1["const"] - eff.step_overhead_s
    allreduce = 2 * 48 * eff.tp_allreduce_s
    assert c2["const"] == pytest.approx(weights_1 / 2 + eff.step_overhead_s + allreduce, rel=1e-4)
    # 34B fp16 weights (~63 GiB) leave ~2x more KV on two GPUs than the 1-GPU remainder * 2
    assert two.engine.num_gpu_blocks > 5 * one.engine.num_gpu_blocks
    assert "x2 (tensor parallel)" in two.provenance.hardware
    with pytest.raises(InputError):
        derive_prior("L4", model)  # 63 GiB of weights do not fit a 24 GB L4
