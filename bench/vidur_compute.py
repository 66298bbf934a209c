"""The compute side of the prior against Vidur's measured GEMM timings (A100, H100, A40).

    python bench/vidur_compute.py [--figure docs/figures/vidur_compute.png]

Vidur's ``mlp.csv`` (``../shared/vidur-data``, see its README) holds, per model, tensor-parallel
degree and batch size in tokens, the measured time of every linear layer of one transformer
layer (``attn_pre_proj`` = QKV, ``attn_post_proj`` = O, ``mlp_up_proj`` = gate+up,
``mlp_down_proj``), in ms. From them, per GPU:

1. **achieved FLOP/s vs batch tokens**: ``2 * tokens * linear params / time``, as a share of the
   spec sheet's dense fp16 peak (``calibrate/specs.py``), beside the fitted ``eta_flop`` of the
   GPU's generation (``calibrate/data/fitted_prior.json``);
2. **achieved bandwidth at one token**: ``weight bytes / time`` of the same layers, beside the
   fitted ``eta_mem``;
3. **a step built from them vs the prior's**: for CodeLlama-34B on 2 x A100 (the configuration
   of ``bench/vs_vidur.py``), all 48 layers' linear time at each batch size, against the
   prior's weights-read plus ``prefill_tokens`` terms (the same GEMMs; attention, norms and
   overheads left out on both sides).

Prints tables and writes one figure. Reads only; skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from driftsched.ground.machine import cpu_model as cpu

DATA = Path(__file__).resolve().parents[2] / "shared" / "vidur-data" / "profiling" / "compute"
OPS = ["attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj"]
#: Vidur's device folder -> our spec-table GPU
DEVICES = {"a100": "A100-80GB", "h100": "H100", "a40": "A40"}
TOKENS = [1, 16, 64, 256, 1024, 4096]


def linear_params(row) -> float:
    """Parameters of one layer's linear ops on one GPU (split ``tp`` ways)."""
    d = row.n_embd / row.n_head
    qkv = row.n_embd * (row.n_head + 2 * row.n_kv_head) * d
    o = row.n_head * d * row.n_embd
    mlp = (3 if row.use_gated_mlp else 2) * row.n_embd * row.n_expanded_embd
    return (qkv + o + mlp) / row.num_tensor_parallel_workers


def load() -> pd.DataFrame:
    rows = []
    for device, gpu in DEVICES.items():
        for path in sorted((DATA / device).glob("*/*/mlp.csv")):
            frame = pd.read_csv(path)
            frame["time_s"] = sum(frame[f"time_stats.{op}.median"] for op in OPS) / 1e3
            frame["params"] = frame.apply(linear_params, axis=1)
            frame["gpu"], frame["model"] = gpu, f"{path.parent.parent.name}/{path.parent.name}"
            rows.append(frame[["gpu", "model", "num_tensor_parallel_workers", "num_tokens",
                               "time_s", "params"]])  # fmt: skip
    out = pd.concat(rows, ignore_index=True).rename(columns={"num_tensor_parallel_workers": "tp"})
    out["flops"] = 2 * out["num_tokens"] * out["params"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figure", default="bench/out/vidur_compute.png")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: no Vidur profiling data at {DATA}")
        return
    from driftsched.calibrate.prior import Efficiency, fitted_prior, step_terms, term_params
    from driftsched.calibrate.specs import GPUS, load_model_config

    fit = fitted_prior()
    d = load()
    d["peak"] = d["gpu"].map(lambda g: GPUS[g].dense_fp16_tflops * 1e12)
    d["bw"] = d["gpu"].map(lambda g: GPUS[g].memory_bandwidth_gbs * 1e9)
    d["flop_share"] = d["flops"] / d["time_s"] / d["peak"]
    d["bw_share"] = d["params"] * 2 / d["time_s"] / d["bw"]
    print(f"Vidur mlp.csv, {d['model'].nunique()} models, tp 1-8; CPU: {cpu()} (reads only)\n")
    print("achieved / peak dense fp16 FLOP/s of the linear layers, median over models and tp,")
    print("beside the fitted eta_flop of the GPU's generation (end-to-end, public measurements):\n")
    table = (
        d[d["num_tokens"].isin(TOKENS)]
        .groupby(["gpu", "num_tokens"])["flop_share"]
        .median()
        .unstack("num_tokens")
    )
    table["fitted eta_flop"] = [fit.for_gpu(g).eta_flop for g in table.index]
    print(table.round(3).to_string())
    one = d[d["num_tokens"] == 1].groupby("gpu")["bw_share"].median()
    print("\nachieved / peak bandwidth at 1 token (the weights read), median; fitted eta_mem:\n")
    print(
        pd.DataFrame({"vidur": one, "fitted eta_mem": [fit.for_gpu(g).eta_mem for g in one.index]})
        .round(3)
        .to_string()
    )

    # 3. CodeLlama-34B on 2 x A100: the linear part of a step, Vidur's vs the prior's
    model, tp, layers = "codellama/CodeLlama-34b-Instruct-hf", 2, 48
    sub = d[(d["gpu"] == "A100-80GB") & (d["model"] == model) & (d["tp"] == tp)]
    sub = sub.groupby("num_tokens")[["time_s"]].median()  # a few sizes were profiled twice
    rows = []
    for label, eff in (("fitted", None), ("roofline-v1", "v1")):
        e = Efficiency() if eff else fit.for_gpu("A100-80GB")
        terms = step_terms(GPUS["A100-80GB"], load_model_config(model), tensor_parallel=tp)
        arch = load_model_config(model)
        params = term_params(e, enforce_eager=False)
        # the weights-read part of const, without the LM head (Vidur's rows are layers only)
        weights_s = 2 * arch.layer_params() / (GPUS["A100-80GB"].memory_bandwidth_gbs * 1e9 * tp)
        per_token = terms["compute"]["prefill_tokens"] * params["compute"]
        for n in TOKENS:
            if n in sub.index:
                vidur = float(sub.loc[n, "time_s"]) * layers
                ours = weights_s * params["memory"] + per_token * n
                rows.append({"prior": label, "tokens": n, "vidur_ms": vidur * 1e3,
                             "prior_ms": ours * 1e3, "prior/vidur": ours / vidur})  # fmt: skip
    step = pd.DataFrame(rows)
    print(f"\n{model} on {tp} x A100: the {layers} layers' linear ops per step, ms\n")
    print(step.round(3).to_string(index=False))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for gpu, g in d.groupby("gpu"):
        med = g.groupby("num_tokens")["flop_share"].median()
        (line,) = axes[0].plot(med.index, med.values, label=f"{gpu} (Vidur, median)")
        axes[0].axhline(fit.for_gpu(gpu).eta_flop, color=line.get_color(), ls=":", lw=1)
    axes[0].set(xscale="log", xlabel="batch tokens", ylabel="achieved / peak FLOP/s",
                title="linear layers, Vidur's measurements (dotted: fitted eta_flop)")  # fmt: skip
    axes[0].legend(fontsize=7)
    for label, g in step.groupby("prior"):
        axes[1].plot(g["tokens"], g["prior_ms"], marker="o", label=f"prior ({label})")
    axes[1].plot(sub.index, sub["time_s"] * layers * 1e3, color="k", label="Vidur (measured)")
    axes[1].set(xscale="log", yscale="log", xlabel="batch tokens", ylabel="ms per step",
                title="CodeLlama-34B, 2 x A100: linear ops of one step")  # fmt: skip
    axes[1].legend(fontsize=7)
    fig.text(0.01, 0.005, f"Vidur profiling data (microsoft/vidur 7d47513) · priors: "
             f"{fit.version} and roofline-v1 (not measured) · {cpu()}", fontsize=6)  # fmt: skip
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
