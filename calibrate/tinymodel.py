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


def write_word_tokenizer(folder: str | Path) -> Path:
    """Give the tiny model in ``folder`` a tokenizer — what ``vllm serve`` (and ``vllm bench
    serve``'s random dataset) need for text, where the in-process engine runs without one
    (``skip_tokenizer_init``). Word level: token ``k`` (``1 <= k < vocab_size``) is the word
    ``w<k>``, 0 is ``[UNK]``; outputs decode to ``" w17 w4093 ..."``, one word per token.
    Writes ``tokenizer.json`` and ``tokenizer_config.json``; returns the folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder = Path(folder)
    vocab_size = json.loads((folder / "config.json").read_text())["vocab_size"]
    vocab = {"[UNK]": 0, **{f"w{k}": k for k in range(1, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    write_text(folder / "tokenizer.json", tok.to_str())
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]"}
    write_text(folder / "tokenizer_config.json", json.dumps(config) + "\n")
    return folder
