"""What a report's reader came for, per kind of output folder: the answer, then the conditions.

Each ``answer_<kind>(folder)`` returns an :class:`Answer`: a one-line verdict, a small table
(identifying columns first) and the conditions the numbers rest on — the cost model and whether
it is a prior, the trace or workload, the seeds. :func:`answer` picks the function by the file
that marks the kind (see :data:`driftsched.sim.studies.report.KINDS`); a folder of no known kind
has no answer section.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: identifying columns, in the order every table shows them first
ID_COLUMNS = [
    "policy",
    "corrector",
    "mode",
    "rate_per_s",
    "replicas",
    "seed",
    "seeds",
    "tier",
    "tenant",
    "claim",
    "key",
]


@dataclass
class Answer:
    verdict: str
    table: pd.DataFrame | None = None
    conditions: dict[str, str] = field(default_factory=dict)


def ids_first(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its identifying columns (:data:`ID_COLUMNS`) first, the rest in order."""
    first = [c for c in ID_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _cost_model(name, kind) -> str:
    from driftsched.sim.profile import cost_model_label

    return cost_model_label(name, kind)


def _from_columns(frame: pd.DataFrame) -> dict[str, str]:
    if "cost_model" in frame.columns and len(frame):
        return {
            "cost model": _cost_model(frame["cost_model"].iloc[0], frame["cost_model_kind"].iloc[0])
        }
    return {"cost model": "not recorded (a folder from an older driftsched)"}


def answer_paper(folder: Path) -> Answer:
    d = _json(folder / "paper_deltas.json")
    rows = []
    for c in d.get("claims", []):
        holds = c.get("agrees_in_direction", c.get("agrees"))
        rows.append(
            {
                "claim": c.get("meaning", c.get("claim")),
                "study": c.get("study"),
                "driftsched": c.get("driftsched"),
                "stress phase only": c.get("stress_phase_only"),
                "holds": "yes" if holds else "no",
            }
        )
    table = pd.DataFrame(rows)
    held = int((table["holds"] == "yes").sum()) if len(table) else 0
    p, s = d.get("profile", {}), d.get("settings", {})
    return Answer(
        f"{held} of {len(table)} of the study's headline claims hold in direction here.",
        table,
        {
            "study": str(d.get("study", "")),
            "cost model": _cost_model(p.get("name"), p.get("kind")),
            "workload": f"driftsched-paper, {s.get('requests')} requests per seed",
            "seeds": ", ".join(map(str, s.get("seeds", []))),
            "mode": str(s.get("sim", {}).get("mode", "")),
        },
    )


def answer_sweep(folder: Path) -> Answer:
    t = pd.read_csv(folder / "sweep.csv")
    spec = _json(folder / "spec.json")
    metric = "e2e_p99_s" if "e2e_p99_s" in t.columns else "e2e_p50_s"
    groups = [c for c in ("rate_per_s", "mode", "replicas") if c in t.columns]
    best = t.loc[t.groupby(groups)[metric].idxmin()] if groups else t.nsmallest(1, metric)
    cols = [c for c in [*groups, "policy", "corrector", metric, f"{metric}_ci_high"] if c in t]
    wins = best["policy"].value_counts()
    verdict = (
        f"Best policy by mean {metric} at each load: {wins.index[0]} wins {wins.iloc[0]} of "
        f"{len(best)} settings."
        if len(wins)
        else "No runs."
    )
    w = spec.get("workload", {})
    return Answer(
        verdict,
        ids_first(best[cols].reset_index(drop=True)),
        {
            **_from_columns(t),
            "workload": w.get("trace") or f"{w.get('generator')}, {w.get('requests')} requests",
            "seeds": ", ".join(map(str, spec.get("seeds", []))),
        },
    )


def answer_capacity(folder: Path) -> Answer:
    t = pd.read_csv(folder / "capacity.csv")
    meta = _json(folder / "capacity.json")
    cols = [c for c in ("policy", "replicas", "max_rate_per_s", "verdict", "failing_rate_per_s")]
    cols = [c for c in cols if c in t.columns]
    ok = t[t["verdict"] == "feasible"] if "verdict" in t.columns else t
    unbounded = t[t["verdict"] == "unbounded"] if "verdict" in t.columns else t.iloc[:0]
    if len(unbounded):
        verdict = (
            f"SLO met at every rate tried for {', '.join(unbounded['policy'])}: the workload "
            "is too short to load the engine (more requests give a real capacity)."
        )
    elif len(ok):
        top = ok.loc[ok["max_rate_per_s"].idxmax()]
        verdict = (
            f"Highest sustainable rate within {', '.join(meta.get('slos', []))}: "
            f"{top['policy']} at {top['max_rate_per_s']:.3g} req/s."
        )
    else:
        verdict = "No policy meets the SLOs meaningfully: " + " ".join(
            meta.get("verdicts", {}).values()
        )
    w = meta.get("workload", {})
    return Answer(
        verdict,
        ids_first(t[cols]),
        {
            "SLOs": ", ".join(meta.get("slos", [])),
            "confidence": f"{meta.get('confidence', 0):.0%} one-sided over seeds",
            "cost model": meta.get("cost_model_note", "not recorded").removeprefix("cost model: "),
            "workload": w.get("trace") or f"{w.get('generator')}, {w.get('requests')} requests",
            "seeds": ", ".join(map(str, meta.get("seeds", []))),
        },
    )


def answer_compare(folder: Path) -> Answer:
    t = pd.read_csv(folder / "compare.csv")
    best = t.loc[t["e2e_p99_s"].idxmin()]
    cols = [c for c in ("policy", "corrector", "e2e_p50_s", "e2e_p99_s", "ttft_p99_s") if c in t]
    cols += [c for c in ("est_mae_tokens", "jain_fairness") if c in t]
    return Answer(
        f"Lowest P99 E2E: {best['policy']}/{best['corrector']} at {best['e2e_p99_s']:.3g} s.",
        ids_first(t[cols].sort_values("e2e_p99_s").reset_index(drop=True)),
        {**_from_columns(t), "mode": str(t["mode"].iloc[0]) if "mode" in t else ""},
    )


def answer_run(folder: Path) -> Answer:
    d = _json(folder / "summary.json")
    s, m, a = d.get("summary", {}), d.get("meta", {}), d.get("accounting", {})
    p = m.get("profile", {})
    keys = ["requests", "finished", "e2e_p50_s", "e2e_p99_s", "ttft_p50_s", "ttft_p99_s"]
    table = pd.DataFrame([{k: s.get(k) for k in keys}])
    dropped = a.get("dropped", m.get("dropped_oversize", 0))
    return Answer(
        f"{m.get('policy')}/{m.get('corrector')}: median E2E {s.get('e2e_p50_s', 0):.3g} s, "
        f"P99 {s.get('e2e_p99_s', 0):.3g} s; {s.get('finished')} of {s.get('requests')} finished"
        f"{f', {dropped} dropped (oversize)' if dropped else ''}.",
        table,
        {
            "cost model": _cost_model(p.get("name"), p.get("kind")),
            "trace": str(m.get("trace", {}).get("source", "")),
            "mode": str(m.get("mode", "")),
        },
    )


def answer_validate(folder: Path) -> Answer:
    d = _json(folder / "report.json")
    rows = pd.DataFrame(d.get("scenarios", []))
    keys = [
        c
        for c in ("key", "e2e_p50_rel_error", "e2e_p99_rel_error", "ttft_p50_rel_error")
        if c in rows
    ]
    worst = rows["e2e_p50_rel_error"].abs().max() if "e2e_p50_rel_error" in rows else None
    verdict = (
        f"{len(rows)} scenarios live vs simulated; worst median-E2E error {worst:.1%}."
        if worst is not None
        else f"{len(rows)} scenarios."
    )
    return Answer(
        verdict,
        rows[keys] if keys else None,
        {"cost model": _cost_model(d.get("profile"), d.get("profile_kind"))},
    )


#: marker file -> answer function (order as in report.KINDS)
ANSWERS: dict[str, Callable[[Path], Answer]] = {
    "paper_deltas.json": answer_paper,
    "sweep.csv": answer_sweep,
    "capacity.csv": answer_capacity,
    "compare.csv": answer_compare,
    "report.json": answer_validate,
    "summary.json": answer_run,
}


def answer(folder: Path) -> Answer | None:
    """The answer for ``folder``'s kind, or None (unknown kind, or its files unreadable)."""
    for marker, fn in ANSWERS.items():
        if (folder / marker).exists():
            try:
                return fn(folder)
            except (KeyError, ValueError, TypeError, IndexError):
                return None
    return None
