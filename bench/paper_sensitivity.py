"""How the study's headline deltas depend on what the study did not publish (docs/paper.md).

Prints two tables: the calibration gain as output lengths move toward the caps, and SJF vs
FIFO as the load gets lighter (and under continuous batching). Seed 0, L4 prior, ~30 s.

    python bench/paper_sensitivity.py
"""

from __future__ import annotations

from driftsched.sim.config import SimConfig
from driftsched.sim.studies.compare import compare
from driftsched.sim.studies.paper import default_settings, fmt, reproduce
from driftsched.traces.paper import LengthParams, PaperConfig, generate_paper


def lengths() -> None:
    print("output medians | outputs at cap | MAE change | RMSE change   (fifo, seed 0)")
    base = PaperConfig()
    for k in (1.0, 1.4, 1.8):
        medians = {
            c: LengthParams(median=p.median * k, sigma=p.sigma)
            for c, p in base.output_lengths.items()
        }
        trace = generate_paper(PaperConfig(seed=0, output_lengths=medians))
        t = compare(trace, ["fifo"], ["none", "ewma"], SimConfig(mode="microbatch")).table()
        t = t.set_index("corrector")
        at_cap = (trace.frame["output_tokens"] == trace.frame["max_tokens"]).mean()
        mae = t.loc["ewma", "est_mae_tokens"] / t.loc["none", "est_mae_tokens"] - 1
        rmse = t.loc["ewma", "est_rmse_tokens"] / t.loc["none", "est_rmse_tokens"] - 1
        print(f"x{k:<13} | {at_cap:14.1%} | {fmt(mae):>10} | {fmt(rmse):>11}")


def contention() -> None:
    print("\nsetup | FIFO E2E P50 / P99 (s) | SJF vs FIFO P50 | P99   (corrector ewma, seed 0)")
    cases = [
        (f"gaps x{k:g}", default_settings(seeds=[0], policies=["fifo", "sjf"], gap_scale=k))
        for k in (1.0, 4.0, 8.0)
    ]
    cont = default_settings(seeds=[0], policies=["fifo", "sjf"])
    cont = cont.model_copy(update={"sim": SimConfig(mode="continuous", max_concurrency=32)})
    cases.append(("gaps x1, continuous (32 in flight)", cont))
    for label, settings in cases:
        r = reproduce(settings)
        t = r.table().set_index(["policy", "corrector"])
        d = {c["claim"]: c["driftsched"] for c in r.deltas()["claims"]}
        p50, p99 = t.loc[("fifo", "ewma"), "e2e_p50_s"], t.loc[("fifo", "ewma"), "e2e_p99_s"]
        print(
            f"{label} | {p50:.0f} / {p99:.0f} | {fmt(d['sjf_vs_fifo_e2e_p50_change'])} | "
            f"{fmt(d['sjf_vs_fifo_e2e_p99_change'])}"
        )


if __name__ == "__main__":
    lengths()
    contention()
