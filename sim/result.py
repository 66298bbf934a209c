"""A simulation's result: per-request records, time series, summaries, files and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from driftsched.sim import metrics
from driftsched.sim.studies import plots

from driftsched.ground.atomic import atomic_path, output_folder, write_json


@dataclass
class SimResult:
    """``records``: one row per request (see docs/model.md for every column); ``series``: sampled
    queue depth, batch size, KV utilisation; ``corrector_series``: corrector state values, one
    row per value changed by a finish; ``meta``: config, profile provenance, labels."""

    records: pd.DataFrame
    series: pd.DataFrame
    corrector_series: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def labels(self) -> dict:
        return {k: self.meta[k] for k in metrics.LABELS}

    @property
    def label(self) -> str:
        oracle = " [ORACLE]" if self.meta.get("oracle") else ""
        return f"{self.meta['policy']}/{self.meta['corrector']}{oracle}"

    @classmethod
    def from_run(cls, run, trace) -> SimResult:
        f, cfg = run.frame, run.config
        rec = run.records()
        series = run.series.frame()
        corr = run.corrector_series.frame()
        meta = {
            "policy": cfg.policy,
            "corrector": cfg.corrector,
            "mode": cfg.mode,
            "oracle": bool(getattr(run.gateway.corrector, "is_oracle", False)),
            "config": cfg.model_dump(mode="json"),
            "profile": {
                "name": run.profile.name,
                "kind": run.profile.kind,
                "hardware": run.profile.provenance.hardware,
                "model": run.profile.provenance.model,
            },
            "engine": run.settings.model_dump(mode="json"),
            "trace": {k: v for k, v in trace.meta.items() if k in ("source", "schema_version")},
            "dropped_oversize": len(trace) - len(f),
            "max_model_len": run.settings.max_model_len,
            "simulated_until_s": float(run.env.now),
            "engine_events": run.engine_events,
            "engine_steps": run.engine_steps,
            "engine_busy_s": run.engine_busy_s,
        }
        if run.settings.enable_prefix_caching:
            meta["prefix_cache"] = run.prefix_cache_stats()
        return cls(rec, series, corr, meta)

    # -- provenance --------------------------------------------------------------------------
    def cost_model_note(self) -> str:
        """Which cost model this run rests on, and whether it is a prior or measured."""
        from driftsched.sim.profile import cost_model_note

        p = self.meta["profile"]
        return cost_model_note(p["name"], p["kind"], p["hardware"], p["model"])

    def cost_model_columns(self) -> dict[str, str]:
        """``cost_model`` and ``cost_model_kind`` (prior | measured), for tables and CSVs."""
        return {"cost_model": self.meta["profile"]["name"], "cost_model_kind": self.kind}

    @property
    def kind(self) -> str:
        return self.meta["profile"]["kind"]

    def prefix_cache_line(self) -> str | None:
        """One line on prefix caching (None when it was off)."""
        pc = self.meta.get("prefix_cache")
        if pc is None:
            return None
        return (
            f"prefix cache: {pc['hit_rate']:.1%} of prompt tokens looked up at admission were "
            f"hits ({pc['hit_tokens']:,} of {pc['query_tokens']:,}); their prefill was skipped"
        )

    # -- accounting --------------------------------------------------------------------------
    def accounting(self) -> dict:
        """Where every request of the trace went: ``trace_requests`` = ``finished`` +
        ``rejected`` (turned away by the policy at admission; ``rejected_reasons`` counts each
        reason) + ``unfinished`` (still queued or running when the run stopped at
        ``horizon_s``) + ``dropped`` (left out before the run; ``dropped_reasons`` says why)."""
        return records_accounting(self.records, int(self.meta.get("dropped_oversize", 0)),
                                  self.meta.get("max_model_len"))  # fmt: skip

    def accounting_line(self) -> str:
        """:meth:`accounting` as one line for the console."""
        return accounting_line(self.accounting())

    # -- summaries ---------------------------------------------------------------------------
    def summary(self, by: str | None = None) -> pd.DataFrame:
        """One row (``by=None``) or one per ``"tier"`` / ``"tenant"``, labelled."""
        return metrics.summary(self.records, by, self.labels)

    # -- figures -----------------------------------------------------------------------------
    def plot_cdf(self):
        return plots.latency_cdfs({self.label: self.records})

    def plot_queue_depth(self):
        return plots.queue_depth(self.series)

    def plot_corrector(self):
        return plots.corrector_bias(self.corrector_series) if len(self.corrector_series) else None

    # -- files -------------------------------------------------------------------------------
    def write(self, out_dir: str | Path, plots_too: bool = True) -> Path:
        """Write records (Parquet), summaries (JSON + CSV), series and figures into ``out_dir``.
        Each file is written atomically."""
        out = output_folder(out_dir)
        write_parquet(self.records, out / "records.parquet")
        write_parquet(self.series, out / "timeseries.parquet")
        write_parquet(self.corrector_series, out / "corrector.parquet")
        overall = self.summary()
        write_csv(overall.assign(**self.cost_model_columns()), out / "summary.csv")
        write_csv(self.summary("tier"), out / "summary_by_tier.csv")
        write_csv(self.summary("tenant"), out / "summary_by_tenant.csv")
        payload = {
            "meta": self.meta,
            "accounting": self.accounting(),
            "summary": overall.iloc[0].to_dict(),
        }
        write_json(out / "summary.json", payload, sort_keys=True)
        if plots_too:
            note = f"{self.label} · {self.cost_model_note()}"
            plots.save(self.plot_cdf(), out / "latency_cdf.png", note)
            plots.save(self.plot_queue_depth(), out / "queue_depth.png", note)
            fig = self.plot_corrector()
            if fig is not None:
                plots.save(fig, out / "corrector_bias.png", note)
        return out


ACCOUNTING_KEYS = ("trace_requests", "finished", "rejected", "unfinished", "dropped")


def records_accounting(records: pd.DataFrame, dropped: int = 0, max_model_len=None) -> dict:
    """:meth:`SimResult.accounting` of a records table (a simulation's or a live run's) and
    the number of requests ``dropped`` before the run (as longer than ``max_model_len``)."""
    finished = int(records["finished"].sum())
    rejected = records["rejected"]
    reasons_dropped = {}
    if dropped:
        reasons_dropped["oversize"] = (
            f"prompt_tokens + output_tokens > max_model_len {max_model_len}"
        )
    counts = records.loc[rejected, "reject_reason"].value_counts(sort=False)
    return {
        "trace_requests": len(records) + dropped,
        "finished": finished,
        "rejected": int(rejected.sum()),
        "rejected_reasons": {str(k): int(v) for k, v in counts.items() if v},
        "unfinished": len(records) - finished - int(rejected.sum()),
        "dropped": dropped,
        "dropped_reasons": reasons_dropped,
    }


def accounting_line(acc: dict, runs: int | None = None) -> str:
    """An :meth:`SimResult.accounting` dict — one run's, or (``runs``) summed over that many
    runs — as the one line every command prints: ``requests: N in the trace — F finished,
    [R rejected by the policy (reason: n),] [U unfinished ...,] D dropped (why)``."""
    the = "the run" if runs is None else "runs"
    parts = [f"{acc.get('finished', 0):,} finished"]
    if acc.get("rejected"):
        reasons = acc.get("rejected_reasons") or {}
        why = f" ({'; '.join(f'{k}: {v:,}' for k, v in reasons.items())})" if reasons else ""
        parts.append(f"{acc['rejected']:,} rejected by the policy{why}")
    if acc.get("unfinished"):
        parts.append(f"{acc['unfinished']:,} unfinished when {the} stopped (horizon_s)")
    if acc.get("dropped"):
        reasons = acc.get("dropped_reasons") or {"oversize": "longer than max_model_len"}
        why = "; ".join(f"{k}: {v}" for k, v in reasons.items())
        before = "the run" if runs is None else "the runs"
        parts.append(f"{acc['dropped']:,} dropped before {before} ({why})")
    else:
        parts.append("0 dropped")
    where = "in the trace" if runs is None else f"over {runs} runs"
    return f"requests: {acc.get('trace_requests', 0):,} {where} — " + ", ".join(parts)


def summed_accounting(rows: pd.DataFrame) -> dict[str, int]:
    """:data:`ACCOUNTING_KEYS` summed over per-run rows (a run's ``requests`` stands for its
    ``trace_requests`` plus ``dropped`` when rows do not carry it)."""
    out = {k: int(rows[k].sum()) for k in ACCOUNTING_KEYS if k in rows.columns}
    if "trace_requests" not in out:
        out["trace_requests"] = int(rows["requests"].sum()) + out.get("dropped", 0)
    return out


ROW_GROUP = 262_144


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Atomically write ``frame`` (zstd); return ``path``. A large frame is converted and written
    one row group at a time, so writing a million records never holds a second full copy in
    Arrow. Only text columns are dictionary-encoded: a column of distinct floats gains nothing
    from a dictionary but the attempt (100k records: 128 -> 70 ms and 8.9 -> 7.1 MB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = pa.Table.from_pandas(frame.iloc[:ROW_GROUP], preserve_index=False)
    text = [f.name for f in first.schema if _is_text(f.type)]
    with (
        atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, first.schema, compression="zstd", use_dictionary=text) as writer,
    ):
        writer.write_table(first)
        for start in range(ROW_GROUP, len(frame), ROW_GROUP):
            part = frame.iloc[start : start + ROW_GROUP]
            writer.write_table(
                pa.Table.from_pandas(part, schema=first.schema, preserve_index=False)
            )
    return Path(path)


def _is_text(kind) -> bool:
    """Whether an Arrow column type holds strings (a pandas categorical of strings included)."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Atomically write ``frame`` as CSV (9 significant digits); returns ``path``."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.9g")
    return Path(path)
