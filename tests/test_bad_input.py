"""The bad-input campaign: every case must give exactly one line ``error: ...`` on stderr, exit
code 2, no traceback, no warning line, and leave nothing new (or half-written) behind.

Each case is run in process through :func:`driftsched.cli.main` (the console entry point), so the
whole campaign takes seconds; ``test_one_line_in_a_real_process`` checks that a subprocess sees
the same. The cases are the defects of the issue "Outputs a user can trust and share" (numbered
as there) plus the campaign's classes that already held.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import pandas as pd
import pytest

from driftsched.cli import main
from tests.conftest import REPO, make_frame, run_cli

QWEN = "Qwen/Qwen1.5-1.8B-Chat"


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run the CLI in process; return (exit code, stdout, stderr). Warnings count as output."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    err += "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    return code, out, err


def assert_one_line(code: int, err: str, *expected: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}: {err}"
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A scratch folder (the current directory) holding a small valid trace ``t.csv``."""
    monkeypatch.chdir(tmp_path)
    make_frame(20).to_csv("t.csv", index=False)
    return tmp_path


def write_csv_with(path: Path, column: str, row: int, value) -> Path:
    frame = make_frame(6).astype({column: object})
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    return path


# -- 1. a trace without requests ------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["traces", "describe", "empty.csv"],
        ["sim", "run", "--trace", "empty.csv", "-o", "o"],
        ["sim", "compare", "--trace", "empty.csv", "-o", "o"],
        ["sweep", "--trace", "empty.csv", "--rates", "1", "-o", "o"],
        ["capacity", "--slo", "p99_e2e<=10s", "--trace", "empty.csv", "-o", "o"],
    ],
)
def test_1_header_only_trace(work, capsys, args):
    make_frame(0).to_csv("empty.csv", index=False)
    before = snapshot(work)
    assert_one_line(*cli(capsys, *args)[::2], "empty.csv", "no requests")
    assert snapshot(work) == before and not (work / "o").exists()


# -- 2. huge and infinite token values ------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "shown"), [("inf", "inf"), ("1e30", "1e+30"), (10**30, "1e+30"), ("-5", "-5")]
)
def test_2_huge_token_values_are_reported_as_written(work, capsys, value, shown):
    write_csv_with(work / "bad.csv", "prompt_tokens", 3, value)
    line = assert_one_line(*cli(capsys, "traces", "validate", "bad.csv")[::2], "row 4")
    assert shown in line and "9223372036854775808" not in line


def test_2_python_int_too_large_in_a_frame():
    from driftsched.traces.trace import Trace

    from driftsched.ground.errors import InputError

    frame = make_frame(3).astype({"output_tokens": object})
    frame.loc[1, "output_tokens"] = 10**30
    with pytest.raises(InputError, match=r"row 2, column 'output_tokens'.*got 1" + "0" * 30 + "$"):
        Trace.from_frame(frame, "f")


# -- 3. an output that cannot be written ----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sim", "run", "--trace", "t.csv", "--no-plots", "-o", "afile"], "not a folder"),
        (["sim", "run", "--trace", "t.csv", "--no-plots", "-o", "afile/sub"], "afile"),
        (["sim", "run", "--trace", "t.csv", "--no-plots", "-o", "/proc/driftsched"], "/proc"),
        (["sim", "run", "--trace", "t.csv", "--no-plots", "-o", "/dev/null"], "/dev/null"),
        (["traces", "generate", "poisson", "-n", "10", "-o", "afile/x.parquet"], "afile"),
        (["traces", "generate", "poisson", "-n", "10", "-o", "/proc/x.parquet"], "/proc"),
        (["traces", "generate", "poisson", "-n", "10", "-o", "dir.parquet"], "is a folder"),
        (["traces", "convert", "t.csv", "dir.parquet"], "is a folder"),
        (["calibrate", "prior", "--gpu", "L4", "--model", QWEN, "-o", "afile/p.json"], "afile"),
    ],
)
def test_3_unwritable_outputs(work, capsys, args, expected):
    (work / "afile").write_text("keep me\n")
    (work / "dir.parquet").mkdir()
    before = snapshot(work)
    assert_one_line(*cli(capsys, *args)[::2], expected)
    assert snapshot(work) == before
    assert not list(work.rglob(".*.tmp"))


@pytest.mark.skipif(os.geteuid() != 0 and shutil.which("chattr") is None, reason="needs chattr")
def test_3_read_only_folder(work, capsys):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = cli(capsys, "traces", "generate", "poisson", "-n", "5", "-o", "ro/x.csv")
        if os.geteuid() == 0:  # root writes anyway: then it must have worked, and cleanly
            assert code == 0 and (ro / "x.csv").is_file()
        else:
            assert_one_line(code, err, "ro")
    finally:
        ro.chmod(0o755)


# -- 4, 5. capacity options -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--slo", "p99_e2e<=0s"], "max_s"),
        (["--slo", "p0_e2e<=1s"], "percentile"),
        (["--slo", "p99_e2e<=10s", "--resolution", "0"], "resolution"),
        (["--slo", "p99_e2e<=10s", "--resolution", "-1"], "resolution"),
        (["--slo", "e2e<10"], "expected"),
    ],
)
def test_4_5_capacity_options(work, capsys, args, expected):
    assert_one_line(*cli(capsys, "capacity", *args, "-o", "o")[::2], expected)
    assert not (work / "o").exists()


# -- 6. a rejected sweep writes nothing -----------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        ["--trace", "bad.csv"],
        ["--seeds", "-1"],
        ["--set", "oversize=maybe"],
        ["--set", "max_concurrency=0"],
        ["--policies", "nope"],
        ["--rates", "1,x"],
    ],
)
def test_6_rejected_sweep_writes_nothing_and_the_rerun_works(work, capsys, bad):
    write_csv_with(work / "bad.csv", "prompt_tokens", 2, "-3")
    assert_one_line(*cli(capsys, "sweep", "--rates", "4", *bad, "-o", "sw")[::2])
    assert not (work / "sw").exists()
    code, _, err = cli(capsys, "sweep", "--rates", "4", "--requests", "60", "-o", "sw")
    assert code == 0, err


# -- 7. profiles ----------------------------------------------------------------------------------
def _profile_variant(path: Path, change) -> Path:
    data = json.loads((REPO / "sim" / "profiles" / "cpu-tiny-llama.json").read_text())
    change(data["coefficients"])
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.update(const=float("nan")), "'coefficients.const': Input should be a finite"),
        (lambda c: c.update(decode_requests=float("inf")), "'coefficients.decode_requests'"),
        (lambda c: c.update(dict.fromkeys(c, 0.0)), "step 0 s"),
        (lambda c: c.pop("prefill_tokens"), "missing coefficient 'prefill_tokens'"),
    ],
)
def test_7_bad_profiles_are_refused(work, capsys, change, expected):
    _profile_variant(work / "p.json", change)
    args = ["sim", "run", "--trace", "t.csv", "--profile", "p.json", "--no-plots", "-o", "o"]
    assert_one_line(*cli(capsys, *args)[::2], "p.json", expected)


def test_7_an_optional_coefficient_may_be_left_out(work, capsys):
    _profile_variant(work / "p.json", lambda c: c.pop("decode_requests_small"))
    args = ["sim", "run", "--trace", "t.csv", "--profile", "p.json", "--no-plots", "-o", "o"]
    code, _, err = cli(capsys, *args)
    assert code == 0, err


# -- 8, 9, 10. importers --------------------------------------------------------------------------
AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            ["2023-11-16 18:15:46.68,374,44", "2023-13-45 99:00,396,109"],
            ["row 2", "'TIMESTAMP'", "'2023-13-45 99:00'"],
        ),
        (
            ["2023-11-16 18:15:46.68,374,44", "2023-11-16 18:15:47.00,abc,5"],
            ["row 2", "'ContextTokens'", "'abc'"],
        ),
        (
            ["2023-11-16 18:15:46.68,374,44", "2023-11-16 18:15:47.00,3,5.5"],
            ["row 2", "'GeneratedTokens'", "5.5"],
        ),
    ],
)
def test_8_azure_bad_cells(work, capsys, rows, expected):
    (work / "az.csv").write_text(AZURE + "\n".join(rows) + "\n")
    args = ["traces", "import", "azure", "az.csv", "-o", "az.parquet"]
    assert_one_line(*cli(capsys, *args)[::2], "az.csv", *expected)


def test_9_mooncake_row_missing_a_field(work, capsys):
    rows = [
        {"timestamp": 0, "input_length": 10, "output_length": 5},
        {"timestamp": 5, "output_length": 5},
    ]
    (work / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["traces", "import", "mooncake", "m.jsonl", "-o", "m.parquet"]
    assert_one_line(*cli(capsys, *args)[::2], "row 2", "'input_length'", "got nothing")


@pytest.mark.parametrize(
    ("pmf", "expected"),
    [("{10: -0.5, 20: 1.5}", "probability -0.5"), ("{10: x}", "not a {tokens: probability}")],
)
def test_10_servegen_bad_pmfs(work, capsys, pmf, expected):
    folder = work / "sg"
    folder.mkdir()
    (folder / "chunk-1-trace.csv").write_text("0,2.0,1.0,Gamma,1,1\n600,2.0,1.0,Gamma,1,1\n")
    good = "{10: 0.5, 20: 0.5}"
    dataset = {"0": {"input_tokens": pmf, "output_tokens": good}}
    (folder / "chunk-1-dataset.json").write_text(json.dumps(dataset))
    args = ["traces", "import", "servegen", "sg", "-o", "sg.parquet", "--duration-s", "600"]
    assert_one_line(*cli(capsys, *args)[::2], expected)
    assert "ast." not in capsys.readouterr().err


def test_10_pmf_rejects_negative_probabilities():
    from driftsched.traces.lengths import PMF

    from driftsched.ground.errors import InputError

    with pytest.raises(InputError, match="probability"):
        PMF.from_mapping({1: 0.5, 2: -0.1})


# -- 11, 12, 13. paths, option parsing, infinite rates --------------------------------------------
def test_11_a_folder_given_as_trace(work, capsys):
    (work / "d.csv").mkdir()
    assert_one_line(*cli(capsys, "traces", "validate", "d.csv")[::2], "is a folder")
    assert_one_line(*cli(capsys, "sim", "run", "--trace", ".", "-o", "o")[::2], "is a folder")


@pytest.mark.parametrize(
    "args",
    [
        ["sim", "run", "--seed", "abc", "-o", "o"],
        ["traces", "generate", "poisson", "-n", "abc", "-o", "x.csv"],
        ["sweep", "--workers", "many"],
        ["sim", "run", "--max-things", "3"],
        ["nosuchcommand"],
        ["traces", "validate"],
    ],
)
def test_12_option_errors_are_one_line(work, capsys, args):
    line = assert_one_line(*cli(capsys, *args)[::2])
    assert "╭" not in line and "--help" in line


@pytest.mark.parametrize("rate", ["inf", "nan", "-1", "0"])
def test_13_non_finite_or_non_positive_rates(work, capsys, rate):
    args = ["traces", "generate", "poisson", "--rate", rate, "-n", "5", "-o", "x.csv"]
    assert_one_line(*cli(capsys, *args)[::2], "rate_per_s")
    assert not (work / "x.csv").exists()


# -- 14. file modes -------------------------------------------------------------------------------
def test_14_outputs_respect_the_umask(work, capsys):
    old = os.umask(0o022)
    try:
        assert cli(capsys, "traces", "generate", "poisson", "-n", "5", "-o", "x.csv")[0] == 0
        assert stat.S_IMODE((work / "x.csv").stat().st_mode) == 0o644
        os.umask(0o077)
        assert cli(capsys, "traces", "generate", "poisson", "-n", "5", "-o", "y.csv")[0] == 0
        assert stat.S_IMODE((work / "y.csv").stat().st_mode) == 0o600
    finally:
        os.umask(old)


# -- also: orphans, stale figures, drop reasons ---------------------------------------------------
def test_orphaned_temporaries_are_cleaned_and_stale_figures_removed(work, capsys):
    args = ["sim", "run", "--trace", "t.csv", "-o", "o"]
    assert cli(capsys, *args)[0] == 0
    out = work / "o"
    assert (out / "latency_cdf.png").is_file() and not (out / "INCOMPLETE").exists()
    dead = out / ".records.parquet.999999999.abcd1234.tmp"  # a writer that no longer exists
    dead.write_bytes(b"half")
    live = out / f".summary.csv.{os.getpid()}.abcd1234.tmp"  # one still being written
    live.write_bytes(b"busy")
    user = out / "my_notes.png"  # the user's own file: never touched
    user.write_bytes(b"png")
    assert cli(capsys, *args, "--no-plots")[0] == 0
    assert not dead.exists() and live.exists() and user.exists()
    assert not (out / "latency_cdf.png").exists(), "a figure this run did not draw was kept"
    assert (out / "records.parquet").is_file()


def test_negative_tokens_are_dropped_under_their_own_reason(tmp_path):
    from driftsched.traces.importers import ImportOptions, RawTrace, finish_import

    raw = RawTrace(
        pd.DataFrame(
            {"arrival_s": [0.0, 1, 2, 3], "prompt_tokens": [5, -1, 0, 5], "output_tokens": [1] * 4}
        )
    )
    trace = finish_import(raw, ImportOptions(), "test", tmp_path / "x")
    assert trace.meta["dropped_rows"] == {"negative_prompt_tokens": 1, "zero_prompt_tokens": 1}


def test_one_line_in_a_real_process(tmp_path):
    r = run_cli("sim", "run", "--seed", "abc", "-o", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    r = run_cli("traces", "describe", tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is a folder" in r.stderr


# -- no silent drops, honest capacity, help -------------------------------------------------------
def test_dropped_requests_are_said_on_the_console_and_in_the_summary(work, capsys):
    frame = make_frame(6)
    frame.loc[2, "prompt_tokens"] = 3000  # longer than the default profile's max_model_len
    frame.to_csv("long.csv", index=False)
    args = ["sim", "run", "--trace", "long.csv", "--set", "oversize=drop", "--no-plots", "-o", "o"]
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert "6 in the trace" in out and "5 finished" in out and "1 dropped" in out
    summary = json.loads((work / "o" / "summary.json").read_text())
    assert (
        summary["accounting"]["dropped"] == 1
        and "oversize" in summary["accounting"]["dropped_reasons"]
    )
    csv = pd.read_csv(work / "o" / "summary.csv")
    assert csv["cost_model_kind"].iloc[0] == "prior"


def test_capacity_says_infeasible_and_honours_replicas(work, capsys):
    args = ["capacity", "--policies", "fifo", "--seeds", "0", "--requests", "200", "-o", "c"]
    code, out, err = cli(capsys, *args, "--slo", "p99_e2e<=0.5s")
    assert code == 0, err
    assert "SLO infeasible" in out and "near-zero load" in out
    assert "requests: 200 over 1 runs — 200 finished, 0 dropped" in out
    table = pd.read_csv(work / "c" / "capacity.csv")
    assert table["verdict"].iloc[0] == "infeasible" and table["max_rate_per_s"].isna().all()
    code, out, err = cli(capsys, *args, "--slo", "p99_e2e<=60s", "--set", "replicas=2")
    assert code == 0, err
    assert pd.read_csv(work / "c" / "capacity.csv")["replicas"].iloc[0] == 2
    assert "PRIOR" in out


def test_help_shows_defaults_and_no_type_noise(capsys):
    code, out, _ = cli(capsys, "sim", "run", "--help")
    assert code == 0
    assert "<bool>" not in out and "<str>" not in out and "╭" not in out
    flat = " ".join(out.split())
    assert "[default: fifo]" in flat and "[default: none]" in flat and "KEY=VALUE" in flat
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.startswith("driftsched ")
    code, out, _ = cli(capsys, "config", "keys")
    assert code == 0 and "max_concurrency" in out
    line = assert_one_line(*cli(capsys, "sim", "run", "--set", "max_concurency=3", "-o", "o")[::2])
    assert "did you mean 'max_concurrency'" in line


def test_a_killed_sweep_leaves_no_workers(tmp_path):
    """SIGKILL the sweep's parent mid-run: its pool workers exit within seconds."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "driftsched.cli", "sweep", "--rates", "1,2,3,4,5,6,7,8",
         "--policies", "fifo,sjf", "--requests", "20000", "--workers", "2",
         "-o", str(tmp_path / "sw")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        children: list[int] = []
        while time.time() < deadline and len(children) < 2:
            time.sleep(0.5)
            out = subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
            ).stdout
            children = [int(p) for p in out.split()]
        assert len(children) >= 2, "the pool never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(p) for p in children):
            time.sleep(0.2)
        assert not any(_alive(p) for p in children), "pool workers outlived the parent"
        assert (tmp_path / "sw" / "INCOMPLETE").is_file()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_paper_says_where_requests_went_and_null_unsets(work, capsys):
    code, out, err = cli(capsys, "paper", "--requests", "100", "--seeds", "0", "-o", "p",
                         "--policies", "fifo")  # fmt: skip
    assert code == 0, err
    assert "requests: 200 over 2 runs — 200 finished, 0 dropped" in out
    from driftsched.ground.parse import parse_sets

    assert parse_sets(["horizon_s=null", "x=[1]"], "t") == {"horizon_s": None, "x": [1]}
    code, _, err = cli(capsys, "traces", "generate", "poisson", "-n", "5", "--set",
                       "max_total_tokens=null", "-o", "n.csv")  # fmt: skip
    assert code == 0, err
