"""``driftsched gateway export LOG -o FOLDER``: a gateway's records log as a run folder —
``records.parquet`` (the simulator's columns, :func:`~.gateway_records.records_frame`),
``summary.csv``, ``summary_by_tier.csv``, ``summary_by_tenant.csv`` and ``summary.json``
(accounting: how many finished, were rejected and why, were cancelled or failed) — the files a
``driftsched sim run`` folder holds, so ``driftsched report`` renders it and the fidelity
comparison pairs it with a simulation by ``request_id``.

Estimates are judged where the truth is known: a request that did not finish has no true
length, so its ``est_class`` is empty and it is left out of the estimate-error metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from driftsched.sim import metrics
from driftsched.sim.jobclass import JobClassConfig
from driftsched.sim.result import write_csv, write_parquet
from driftsched.validate.serve.gateway_records import read_log, records_frame

from driftsched.ground.atomic import output_folder, write_json
from driftsched.ground.errors import InputError


def export_log(log: str | Path, output: str | Path) -> str:
    """Write the run folder (module docstring); returns a one-line account of it."""
    path = Path(log)
    if not path.is_file():
        raise InputError(f"{path}: no such gateway log")
    frame = read_log(path)
    if frame.empty:
        raise InputError(f"{path}: the log holds no records")
    records = records_frame(frame)
    finished = records["finished"].to_numpy(bool)
    records["est_class"] = records["est_class"].where(finished & (records["est_class"] != ""))
    classes = JobClassConfig()
    records["true_class"] = [
        classes.classify(int(p), int(o)) if f else None
        for p, o, f in zip(
            records["prompt_tokens"], records["output_tokens"], finished, strict=True
        )
    ]
    out = output_folder(output)
    write_parquet(records, out / "records.parquet")
    labels = {"source": "gateway log", "log": str(path)}
    overall = metrics.summary(records, None, labels)
    write_csv(overall, out / "summary.csv")
    write_csv(metrics.summary(records, "tier", labels), out / "summary_by_tier.csv")
    write_csv(metrics.summary(records, "tenant", labels), out / "summary_by_tenant.csv")
    outcomes = records["outcome"].value_counts().to_dict()
    reasons = (
        frame.loc[frame["outcome"] != "finished", ["outcome", "reason"]]
        .fillna("")
        .astype(str)
        .agg(": ".join, axis=1)
        .value_counts()
        .to_dict()
    )
    accounting = {
        "requests": len(records),
        "finished": int(finished.sum()),
        "rejected": int(records["rejected"].sum()),
        "outcomes": {k: int(v) for k, v in outcomes.items()},
        "why_not_finished": {k: int(v) for k, v in reasons.items()},
    }
    payload = {
        "meta": {"source": "gateway log", "log": str(path), "cost_model": "live (measured)"},
        "accounting": accounting,
        "summary": {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in overall.iloc[0].to_dict().items()
        },
    }
    write_json(out / "summary.json", payload, sort_keys=True)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(accounting["outcomes"].items()))
    return f"wrote {out}: {len(records)} requests ({parts})"
