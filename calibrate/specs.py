"""What a prior is derived from: public GPU spec sheets and model architectures.

:data:`GPUS` (dense fp16/bf16 tensor FLOP/s, memory bandwidth and size, architecture
generation, each with its source) and :data:`MODELS` (the ``config.json`` fields a prior
needs); :func:`load_model_config` reads a known name or any ``config.json``.
:mod:`driftsched.calibrate.prior` turns them into a profile.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from driftsched.ground.config import Config
from driftsched.ground.errors import InputError, canonical_name

SPEC_TABLE_DATE = "2026-11-24"


class GpuSpec(Config):
    """Public spec-sheet numbers: dense (no sparsity) fp16/bf16 tensor throughput."""

    name: str
    dense_fp16_tflops: float = Field(gt=0)
    memory_bandwidth_gbs: float = Field(gt=0)
    memory_gb: float = Field(gt=0)
    usable_memory_gib: float = Field(gt=0, description="what the driver reports as total")
    generation: str = Field(description="NVIDIA architecture: fitted efficiencies are per one")
    source: str


GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in [
        GpuSpec(
            name="L4",
            generation="Ada",
            dense_fp16_tflops=121.0,
            memory_bandwidth_gbs=300.0,
            memory_gb=24,
            usable_memory_gib=22.5,
            source="NVIDIA L4 datasheet: FP16 tensor 242 TFLOPS with sparsity (121 dense), "
            "24 GB GDDR6, 300 GB/s",
        ),
        GpuSpec(
            name="A10G",
            generation="Ampere",
            dense_fp16_tflops=70.0,
            memory_bandwidth_gbs=600.0,
            memory_gb=24,
            usable_memory_gib=22.0,
            source="AWS EC2 G5 documentation / NVIDIA A10G: ~70 dense FP16 tensor TFLOPS, "
            "24 GB GDDR6, 600 GB/s",
        ),
        GpuSpec(
            name="L40S",
            generation="Ada",
            dense_fp16_tflops=362.05,
            memory_bandwidth_gbs=864.0,
            memory_gb=48,
            usable_memory_gib=44.4,
            source="NVIDIA L40S datasheet: FP16 tensor 733 TFLOPS with sparsity (362 dense), "
            "48 GB GDDR6, 864 GB/s",
        ),
        GpuSpec(
            name="A40",
            generation="Ampere",
            dense_fp16_tflops=149.7,
            memory_bandwidth_gbs=696.0,
            memory_gb=48,
            usable_memory_gib=44.4,
            source="NVIDIA A40 datasheet: FP16 tensor 299.4 TFLOPS with sparsity (149.7 dense), "
            "48 GB GDDR6, 696 GB/s",
        ),
        GpuSpec(
            name="A100-40GB",
            generation="Ampere",
            dense_fp16_tflops=312.0,
            memory_bandwidth_gbs=1555.0,
            memory_gb=40,
            usable_memory_gib=39.4,
            source="NVIDIA A100 datasheet: FP16 tensor 312 TFLOPS dense, 40 GB HBM2, 1,555 GB/s",
        ),
        GpuSpec(
            name="A100-80GB",
            generation="Ampere",
            dense_fp16_tflops=312.0,
            memory_bandwidth_gbs=2039.0,
            memory_gb=80,
            usable_memory_gib=79.2,
            source="NVIDIA A100 datasheet: FP16 tensor 312 TFLOPS dense, 80 GB HBM2e, "
            "2,039 GB/s (SXM)",
        ),
        GpuSpec(
            name="H100",
            generation="Hopper",
            dense_fp16_tflops=989.4,
            memory_bandwidth_gbs=3350.0,
            memory_gb=80,
            usable_memory_gib=79.1,
            source="NVIDIA H100 SXM datasheet: FP16/BF16 tensor 1,979 TFLOPS with sparsity "
            "(989 dense), 80 GB HBM3, 3.35 TB/s",
        ),
        GpuSpec(
            name="H200",
            generation="Hopper",
            dense_fp16_tflops=989.4,
            memory_bandwidth_gbs=4800.0,
            memory_gb=141,
            usable_memory_gib=139.8,
            source="NVIDIA H200 SXM datasheet: FP16/BF16 tensor 1,979 TFLOPS with sparsity "
            "(989 dense), 141 GB HBM3e, 4.8 TB/s",
        ),
    ]
}


class ModelArch(Config):
    """The fields of a Hugging Face ``config.json`` the prior needs."""

    name: str
    num_hidden_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_key_value_heads: int | None = None
    intermediate_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    tie_word_embeddings: bool = False
    head_dim: int | None = None

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def layer_params(self) -> int:
        q = self.hidden_size * self.num_attention_heads * self.dim_per_head
        kv = 2 * self.hidden_size * self.kv_heads * self.dim_per_head
        o = self.num_attention_heads * self.dim_per_head * self.hidden_size
        mlp = 3 * self.hidden_size * self.intermediate_size  # gate, up, down (SwiGLU)
        return self.num_hidden_layers * (q + kv + o + mlp)

    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def weight_params(self) -> int:
        """All weights held in memory: layers, embedding table, LM head (shared when tied)."""
        embed = self.vocab_size * self.hidden_size
        return self.layer_params() + embed + (0 if self.tie_word_embeddings else embed)

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return 2 * self.num_hidden_layers * self.kv_heads * self.dim_per_head * dtype_bytes


def _arch(name, layers, hidden, heads, kv_heads, intermediate, vocab, tied, head_dim=None):
    return ModelArch(
        name=name,
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        head_dim=head_dim,
    )


#: Architectures a prior can be derived for by name (values from each model's config.json on
#: huggingface.co/<name>; any other model: pass its config.json path). Read with
#: :func:`load_model_config`; ``tests/test_costmodel.py`` checks each table row's parameter
#: count against the count its model card publishes.
MODELS: dict[str, ModelArch] = {
    m.name: m
    for m in [
        # name, layers, hidden, query heads, KV heads, intermediate, vocab, tied embeddings
        _arch("meta-llama/Llama-3.1-8B-Instruct", 32, 4096, 32, 8, 14336, 128256, False),
        _arch("meta-llama/Llama-3.1-70B-Instruct", 80, 8192, 64, 8, 28672, 128256, False),
        _arch("meta-llama/Meta-Llama-3-70B-Instruct", 80, 8192, 64, 8, 28672, 128256, False),
        _arch("meta-llama/Meta-Llama-3-8B-Instruct", 32, 4096, 32, 8, 14336, 128256, False),
        _arch("mistralai/Mistral-7B-Instruct-v0.3", 32, 4096, 32, 8, 14336, 32768, False),
        _arch("Qwen/Qwen2.5-0.5B-Instruct", 24, 896, 14, 2, 4864, 151936, True),
        _arch("Qwen/Qwen2.5-1.5B-Instruct", 28, 1536, 12, 2, 8960, 151936, True),
        _arch("Qwen/Qwen2.5-3B-Instruct", 36, 2048, 16, 2, 11008, 151936, True),
        _arch("Qwen/Qwen2.5-7B-Instruct", 28, 3584, 28, 4, 18944, 152064, False),
        # Qwen3: head_dim 128 whatever the hidden size
        _arch("Qwen/Qwen3-0.6B", 28, 1024, 16, 8, 3072, 151936, True, head_dim=128),
        _arch("Qwen/Qwen3-1.7B", 28, 2048, 16, 8, 6144, 151936, True, head_dim=128),
        _arch("Qwen/Qwen3-4B", 36, 2560, 32, 8, 9728, 151936, True, head_dim=128),
        _arch("Qwen/Qwen3-8B", 36, 4096, 32, 8, 12288, 151936, False, head_dim=128),
        _arch("Qwen/Qwen1.5-1.8B-Chat", 24, 2048, 16, 16, 5504, 151936, False),
        _arch("codellama/CodeLlama-34b-Instruct-hf", 48, 8192, 64, 8, 22016, 32000, False),
    ]
}


def load_model_config(path_or_name: str) -> ModelArch:
    """A known model name, or a path to a Hugging Face ``config.json``."""
    path = Path(path_or_name)
    if not path.is_file():
        kind = "model (or config.json path)"
        return MODELS[canonical_name(path_or_name, MODELS, kind)]
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    fields = {k: data[k] for k in ModelArch.model_fields if k in data and k != "name"}
    from driftsched.ground.config import build

    return build(
        ModelArch, {"name": data.get("_name_or_path") or path.parent.name, **fields}, str(path)
    )
