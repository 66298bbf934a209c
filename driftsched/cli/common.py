"""What every command group shares: option types, the progress bar, the profile line.

Commands only parse, call one function of a subsystem, and print. Heavy libraries (pandas,
the simulator) are imported inside the commands, so ``driftsched --help`` starts at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command_group(help: str) -> typer.Typer:
    """A command group as every group is made: plain help (no boxes, no ``<bool>`` metavars;
    defaults shown), its help when called without a command, no shell-completion options."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, add_completion=False)


_METAVARS = {int: "N", float: "X", Path: "PATH", bool: "BOOL"}


def polish_help(command, args: list[str] | None = None) -> None:
    """Help that says what a user needs: a metavar in words where typer would print ``<str>``,
    and, for options that stand for a simulation config field and default to "not given", the
    field's default. ``args`` (the command line) picks the one command whose help is asked for
    (its leading words); without it, every command under ``command`` (a click group). The
    config model is imported only when that command has such an option (a group's help lists
    its commands, not their options: ``driftsched --help`` stays fast)."""
    import contextlib

    with contextlib.suppress(Exception):  # help wording must never stop a command
        if args is None:
            _polish(command, recurse=True)
            return
        for word in args:
            sub = getattr(command, "commands", {}).get(word)
            if word.startswith("-") or sub is None:
                break
            command = sub
        _polish(command, recurse=False)


def _polish(command, recurse: bool) -> None:
    if recurse:
        for sub in getattr(command, "commands", {}).values():
            _polish(sub, recurse=True)
    params = [
        p
        for p in getattr(command, "params", [])
        if not getattr(p, "is_flag", False) and hasattr(p, "help")
    ]
    fields = {}
    if any(p.default is None and "[default" not in (p.help or "") for p in params):
        from driftsched.sim.config import SimConfig

        fields = SimConfig.model_fields
    for param in params:
        if not param.metavar or param.metavar.startswith("<"):
            kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            param.metavar = _METAVARS.get(kind) or (param.name or "value").upper()
        help_text = param.help or ""
        if param.default is None and "[default" not in help_text and param.name in fields:
            default = fields[param.name].get_default(call_default_factory=True)
            param.help = f"{help_text}  [default: {default}]".strip()


Out = Annotated[
    Path,
    typer.Option("--output", "-o", metavar="FILE", help="output file (.parquet or .csv)"),
]
OutDir = Annotated[Path, typer.Option("--output", "-o", metavar="FOLDER", help="output folder")]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="any other config field (JSON for lists/dicts); repeatable; the keys: "
        "driftsched config keys",
    ),
]
Seed = Annotated[int, typer.Option(help="random seed; same seed -> identical output")]
TraceOpt = Annotated[
    Path | None,
    typer.Option(
        "--trace",
        "-t",
        metavar="FILE",
        help="trace file  [default: the study's workload, driftsched-paper seed 0]",
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME|FILE",
        help="cost-model profile name or JSON path  [default: l4-qwen1.5-1.8b-prior]",
    ),
]
ModeOpt = Annotated[
    str | None,
    typer.Option(metavar="MODE", help="continuous | microbatch  [default: continuous]"),
]

#: the summary columns ``sim run`` prints (all of them are in summary.csv)
SUMMARY_COLUMNS = [
    "requests",
    "finished",
    "e2e_p50_s",
    "e2e_p99_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "queue_wait_p50_s",
    "queue_wait_p99_s",
    "queue_wait_max_s",
    "output_tokens_per_s",
    "est_mae_tokens",
    "class_agreement",
    "preemptions",
]
#: the per-run columns comparison tables print
COMPACT_COLUMNS = [
    "policy",
    "corrector",
    "e2e_p50_s",
    "e2e_p99_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "queue_wait_max_s",
    "output_tokens_per_s",
    "est_mae_tokens",
    "class_agreement",
    "jain_fairness",
]


def set_values(pairs: list[str] | None, what: str) -> dict:
    """``--set`` pairs as a dict (JSON values for lists and dicts)."""
    from driftsched.ground.parse import parse_sets

    return parse_sets(pairs, what)


def numbers(text: str | None, option: str, cast=float) -> list | None:
    """A comma list of numbers for ``option`` (``None`` stays ``None``)."""
    from driftsched.ground.parse import parse_list

    return parse_list(text, option, cast)


def load_trace(path: Path | None):
    """The trace at ``path``, or the study's default workload (said on the console)."""
    from driftsched.ground.console import console

    if path is not None:
        from driftsched.traces.trace import read_trace

        return read_trace(path).require_requests()
    from driftsched.traces.generators import generate

    console.print(
        "trace: driftsched-paper, 3000 requests, seed 0 (generated; pass --trace FILE for another)",
        soft_wrap=True,
    )
    return generate("driftsched-paper")


def sim_config(pairs: list[str] | None, **given):
    """A validated :class:`~driftsched.sim.config.SimConfig` from options and ``--set``."""
    from driftsched.ground.config import build
    from driftsched.sim.config import SimConfig

    params = {k: v for k, v in given.items() if v is not None}
    params.update(set_values(pairs, "simulation config"))
    return build(SimConfig, params, "simulation config")


def progress_bar(count: str = "{task.completed}/{task.total}", transient: bool = True):
    """The rich progress bar every long command shows: description, bar, count, ETA."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from driftsched.ground.console import console

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(count),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def profile_note(config=None) -> None:
    """One line: the cost model a run rests on, and whether it is a prior or measured.
    ``config``: a config with a ``profile`` field, a profile name or path, or None (default)."""
    from driftsched.ground.console import console
    from driftsched.sim.profile import DEFAULT_PROFILE, load_profile

    name = getattr(config, "profile", config) or DEFAULT_PROFILE
    console.print(load_profile(name).note(), soft_wrap=True)


def oracle_note(correctors) -> None:
    """Say, in the one wording, that oracle runs are an upper bound (when any ran)."""
    from driftsched.ground.console import console
    from driftsched.sim.correctors import ORACLE_NOTE

    if "oracle" in correctors:
        console.print(f"[bold]{ORACLE_NOTE}[/]")


def noise_floor_line(floor: dict, mape: float) -> str:
    """One sentence: the held-out MAPE against this machine's noise floor."""
    out = "noise floor of this machine: "
    rep = floor.get("repeat_floor_mape")
    if rep is not None and rep == rep:
        out += (
            f"a perfect cost model would score {rep:.1%} held-out MAPE here (each step "
            f"predicted by its own repeats' mean, {floor['repeat_floor_steps']} steps); this "
            f"fit's {mape:.1%} is {(mape - rep) * 100:+.1f} points from it; "
        )
    return out + (
        f"identical steps differ by {floor['identical_step_mape']:.1%} (mean abs., "
        f"{floor['steps']} steps); the same plan point's median moves "
        f"{floor['episode_drift']:.1%} between its repeats"
    )


def print_profile(prof) -> None:
    """A profile's provenance, coefficients, engine settings, fit quality and overheads."""
    import pandas as pd

    from driftsched.ground.console import console, table
    from driftsched.sim.profile import cost_model_label

    p = prof.provenance
    console.print(
        f"[bold]{cost_model_label(prof.name, prof.kind)}[/]; {p.hardware}; {p.model}; "
        f"{p.engine} {p.engine_version or ''}; {p.date}",
        soft_wrap=True,
    )
    coef = pd.DataFrame(
        [(k, v, prof.units.get(k, "")) for k, v in prof.coefficients.items()],
        columns=["feature", "coefficient", "unit"],
    )
    console.print(table(coef, "coefficients"))
    e = prof.engine
    console.print(
        f"engine: block_size {e.block_size}, {e.num_gpu_blocks} KV blocks, "
        f"max_num_seqs {e.max_num_seqs}, max_num_batched_tokens "
        f"{e.max_num_batched_tokens}, max_model_len {e.max_model_len}, {e.dtype}"
    )
    if prof.fit_quality:
        rows = [
            (r, q["n"], q["r2"], q["mape"], q["p90_ape"], q.get("time_error", float("nan")))
            for r, q in prof.fit_quality["held_out"].items()
        ]
        columns = ["held-out", "steps", "r2", "mape", "p90_ape", "time_error"]
        console.print(table(pd.DataFrame(rows, columns=columns), "fit quality"))
        console.print(
            "time_error: sum predicted / sum measured - 1 (< 0: a simulator on this profile "
            "runs these steps faster than the engine did)",
            soft_wrap=True,
        )
        floor = prof.fit_quality.get("noise_floor")
        if floor:
            console.print(
                noise_floor_line(floor, prof.fit_quality["held_out"]["all"]["mape"]), soft_wrap=True
            )
    probe = prof.provenance.details.get("host_probe_ms")
    if probe:
        spread = prof.provenance.details.get("host_probe_spread")
        console.print(
            f"host probe while profiling (a fixed matmul loop, no engine): median {probe:.2f} ms"
            + (f", P90/P10 over the episodes {1 + spread:.2f}x" if spread is not None else "")
            + " — validate run compares the host's speed then and now",
            soft_wrap=True,
        )
    if prof.overheads_s:
        console.print(
            "overheads outside steps: "
            + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in prof.overheads_s.items())
        )
