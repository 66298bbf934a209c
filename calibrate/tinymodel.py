"""A tiny random-weight Llama for profiling the real vLLM engine where no model can be downloaded.

``write_tiny_model(folder)`` writes only a ``config.json``; vLLM builds the network from it and
fills the weights with ``load_format="dummy"``. Prompts are token ids (no tokenizer), outputs are
forced to exact lengths with ``ignore_eos``. The numbers it produces are real engine step times
of this architecture on this machine — not of any production model.
"""

from __future__ import annotations

import json
from pathlib import Path

from driftsched.ground.atomic import output_folder, write_text

TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 1024,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "vocab_size": 8192,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def write_tiny_model(folder: str | Path, **overrides) -> Path:
    """Write the tiny model's ``config.json`` into ``folder`` (created); return the folder."""
    folder = Path(folder)
    output_folder(folder)
    write_text(folder / "config.json", json.dumps({**TINY_LLAMA, **overrides}, indent=2) + "\n")
    return folder
