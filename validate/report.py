"""The validation report for people: Markdown tables and figures (CDF overlays, errors)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from driftsched.validate.fidelity import TIE_REL

ROW_KEYS = [
    "e2e_p50_rel_error",
    "e2e_p99_rel_error",
    "ttft_p50_rel_error",
    "ttft_p99_rel_error",
    "queue_wait_p50_rel_error",
    "e2e_ks",
]


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.1%}"


def _ratio(value) -> str:
    """A speed ratio, or one per replica."""
    if isinstance(value, list):
        return " / ".join(f"{v:.3f}" for v in value)
    return f"{value:.3f}"


def markdown(report: dict) -> str:
    lines = [
        f"# Simulator fidelity against live vLLM — {report['status']}",
        "",
        f"Profile: `{report['profile']}` ({report['profile_kind']}). "
        f"Scenarios: {len(report['scenarios'])}.",
        "",
    ]
    if report.get("error"):
        lines += [f"**Error:** {report['error']}", ""]
    before, after = report.get("speed_ratio_before"), report.get("speed_ratio_after")
    if before is not None:
        lines += [
            f"Machine speed check (measured / predicted step time on the profiling plan, "
            f"1.00 = as profiled{'; per replica' if isinstance(before, list) else ''}): "
            f"before the scenarios {_ratio(before)}"
            + (f", after {_ratio(after)}" if after is not None else "")
            + ". Diagnostic only; the simulator is not rescaled by it.",
            "",
        ]
    differs = report.get("environment_differs_from_profile")
    if differs:
        lines += [
            "**This engine does not run as the profiled one did** (each moves step time): "
            + "; ".join(f"{k}: profile {v['profile']}, now {v['now']}" for k, v in differs.items())
            + ".",
            "",
        ]
    elif differs is not None:
        lines += [
            "Engine environment as profiled (device, vLLM and torch versions, threads, allocator).",
            "",
        ]
    overrides = report.get("engine_overrides")
    if overrides:
        lines += [
            "**Engine arguments set over the profile's:** "
            + ", ".join(f"`{k}={v}`" for k, v in overrides.items())
            + " — live timing is not like for like with the profile; schedule replay (which "
            "takes the live steps' own durations) is.",
            "",
        ]
    s = report.get("summary")
    if s:
        lines += [
            "## Summary (mean over completed scenarios)",
            "",
            "| metric | P50 rel. error | P90 | P99 | KS |",
            "|---|---|---|---|---|",
        ]
        for m in ("e2e", "ttft", "queue_wait"):
            lines.append(
                f"| {m} | {_pct(s[f'{m}_p50_rel_error'])} | "
                f"{_pct(s[f'{m}_p90_rel_error'])} | {_pct(s[f'{m}_p99_rel_error'])} | "
                f"{s[f'{m}_ks']:.3f} |"
            )
        if "noise_e2e_p50_rel_error" in s:
            lines += [
                "",
                "Noise floor — the same scenarios run live twice differ by: E2E P50 "
                f"{_pct(s['noise_e2e_p50_rel_error'])}, P99 "
                f"{_pct(s['noise_e2e_p99_rel_error'])}, TTFT P50 "
                f"{_pct(s['noise_ttft_p50_rel_error'])}.",
            ]
        tau = s.get("ranking_agreement")
        lines += [
            "",
            f"Ranking agreement (Kendall tau, median E2E across scenarios): "
            f"{tau if tau is None or not math.isfinite(tau) else round(tau, 3)}; "
            f"{s.get('ranking_pairs_agree')}/{s.get('ranking_pairs')} scenario pairs "
            f"ordered alike ({s.get('ranking_pairs_distinct_agree')}/"
            f"{s.get('ranking_pairs_distinct')} of those whose live medians differ by >= "
            f"{TIE_REL:.0%}); P99: {s.get('ranking_agreement_p99')}",
            "",
        ]
    lines += _timing(report)
    lines += [
        "## Scenarios",
        "",
        "| scenario | status | live E2E P50 (s) | sim E2E P50 (s) | " + " | ".join(ROW_KEYS) + " |",
        "|" + "---|" * (4 + len(ROW_KEYS)),
    ]
    for r in report["scenarios"]:
        cells = [
            _pct(r.get(k)) if "rel_error" in k else f"{r.get(k, float('nan')):.3f}"
            for k in ROW_KEYS
        ]
        lines.append(
            f"| {r['key']} | {r['status']} | {r['e2e_p50_live_s']:.2f} | "
            f"{r['e2e_p50_sim_s']:.2f} | " + " | ".join(cells) + " |"
        )
    for r in report["scenarios"]:
        if r["status"] != "complete":
            lines += [
                "",
                f"- {r['key']}: {r['status']} ({r['error']}); {r['live_finished']} of "
                f"{r['requests']} requests completed; unfinished: "
                f"{', '.join(r['unfinished_request_ids'][:20])}",
            ]
    return "\n".join(lines)


def _host(slowdown) -> str:
    return "n/a" if slowdown is None else f"{slowdown:.3f}"


def _timing(report: dict) -> list[str]:
    """The section that tells a semantic error from a timing error (replay, run speed)."""
    rows = [r for r in report["scenarios"] if "replay_identical_share" in r]
    if not rows:
        return []
    rescale = report.get("settings", {}).get("rescale", False)
    lines = [
        "## Semantics or timing?",
        "",
        "*Replay*: the simulator on the same arrivals with each step lasting as long as the live "
        "engine's step did — what is left is the engine and gateway model. *Run speed*: measured "
        "/ predicted time of the run's own steps (> 1: the machine ran slower than profiled). "
        "*Rescaled*: the simulator with the profile multiplied by the run speed — the cost "
        "model's shape with the day's machine speed factored out. *Host*: a fixed "
        "matrix-multiply loop, no vLLM involved, timed around the scenario against the same "
        "loop while profiling (> 1: the machine itself ran slower; n/a: the profile has no "
        "probe). "
        + (
            "**Gates read the rescaled figures (`--rescale`).**"
            if rescale
            else "Gates read the raw figures; `--rescale` makes them read the rescaled ones."
        ),
        "",
        "| scenario | run speed | host | steps identical | first divergence | replay E2E "
        "per-request P99 | replay E2E P50 | raw E2E P50 | rescaled E2E P50 | rescaled E2E P99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        first = r.get("replay_first_divergence")
        where = "none" if first is None else f"step {first['step']}"
        lines.append(
            f"| {r['key']} | {r.get('speed_ratio_run', float('nan')):.3f} | "
            f"{_host(r.get('host_slowdown'))} | {_pct(r['replay_identical_share'])} | {where} | "
            f"{_pct(r.get('replay_e2e_request_error_p99'))} | "
            f"{_pct(r.get('replay_e2e_p50_rel_error'))} | {_pct(r.get('e2e_p50_rel_error'))} | "
            f"{_pct(r.get('rescaled_e2e_p50_rel_error'))} | "
            f"{_pct(r.get('rescaled_e2e_p99_rel_error'))} |"
        )
    for r in rows:
        first = r.get("replay_first_divergence")
        if first is not None:
            lines.append(
                f"- {r['key']}: first differing step {first['step']}: live {first['live']}, "
                f"simulated {first['sim']}"
            )
    return [*lines, ""]


def figures(out: Path, report: dict) -> list[Path]:
    """``cdf_<scenario>.png`` overlays and ``errors.png``; returns the written paths."""
    from driftsched.sim.studies import plots
    from driftsched.validate.runner import load_records

    plt = plots._plt()
    written = []
    from driftsched.sim.profile import cost_model_label

    label = cost_model_label(report["profile"], report.get("profile_kind", "?"))
    note = f"live vLLM vs simulator · cost model: {label}"
    for r in report["scenarios"]:
        live, sim = load_records(out, r["key"])
        fig = plots.latency_cdfs({"live vLLM": live, "simulator": sim})
        fig.suptitle(r["key"])
        written.append(plots.save(fig, out / f"cdf_{r['key']}.png", note))
    rows = report["scenarios"]
    if rows:
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 4), constrained_layout=True)
        keys = [
            "e2e_p50_rel_error",
            "e2e_p99_rel_error",
            "ttft_p50_rel_error",
            "queue_wait_p50_rel_error",
        ]
        x = np.arange(len(rows))
        for j, k in enumerate(keys):
            ax.bar(x + j * 0.2, [100 * (r.get(k) or 0) for r in rows], 0.2, label=k)
        ax.set_xticks(x + 0.3, [r["key"] for r in rows], rotation=30, ha="right", fontsize=7)
        ax.set(ylabel="relative error (%)", title="Simulator error per scenario")
        ax.legend(fontsize=7)
        written.append(plots.save(fig, out / "errors.png", note))
    return written
