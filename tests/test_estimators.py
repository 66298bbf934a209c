"""The length-estimation laboratory: the correctors the field compares (each through the
corrector kit), their convergence and drift tracking, length distributions and the policy that
reads them, the drift scenarios, and the drift bench."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from driftsched.sim.checks.correctors import check_corrector
from driftsched.sim.correctors import CORRECTORS, LogNormal, is_oracle, make_corrector
from driftsched.sim.correctors.distribution import Histogram
from driftsched.sim.request import Admission
from driftsched.sim.simulation import simulate
from driftsched.sim.studies.driftbench import DriftBenchSettings, recovery_s, run_drift_bench
from driftsched.traces.generators import generate
from driftsched.traces.scenarios import SCENARIOS, apply_scenario

from driftsched.ground.errors import InputError
from tests.conftest import run_cli

LEARNED = ["ewma", "ewma_tenant", "quantile", "lognormal", "regression"]
NAN = float("nan")


def adm(i: int, category: str = "summary", tenant: str = "a", prompt: int = 200) -> Admission:
    return Admission(i, f"r{i}", float(i), tenant, "standard", 2, category, prompt, 2048 - prompt,
                     NAN, NAN)  # fmt: skip


def stream(corrector, lengths, start: int = 0, **kw):
    """Estimate then observe each length in turn; the estimates."""
    out = []
    for k, n in enumerate(lengths):
        a = adm(start + k, **kw)
        out.append(corrector.estimate(a))
        corrector.observe(a, int(n))
    return np.asarray(out)


# -- the kit ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [c for c in CORRECTORS if not is_oracle(c)])
def test_every_corrector_passes_the_corrector_kit(name):
    report = check_corrector(name, examples=15)
    assert report.ok, str(report)


def test_the_kit_catches_a_corrector_that_is_not_a_function_of_what_it_saw():
    class Coin:
        """Depends on global state (a counter shared by every instance), not only on what
        this instance was shown."""

        calls = 0

        def estimate(self, a):
            Coin.calls += 1
            return 1 + (Coin.calls * 7919 + a.prompt_tokens) % 97

    class PeeksAtTheCap:
        """'Learns' the cap of the trace it runs on: fine — a cap is client-visible."""

        def estimate(self, a):
            return max(1, a.max_tokens // 2)

    failed = {r.name for r in check_corrector(Coin, examples=5, shrink=False).failed}
    assert "function_of_what_it_observed" in failed
    assert check_corrector(PeeksAtTheCap, examples=10).ok
    with pytest.raises(ValueError, match="reads the true lengths"):
        check_corrector("oracle")


# -- convergence and drift ---------------------------------------------------------------------
def lognormal_lengths(seed: int, n: int, median: float, sigma: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(1, np.rint(median * np.exp(sigma * rng.standard_normal(n))))


@pytest.mark.parametrize("name", ["quantile", "lognormal", "regression"])
def test_median_estimators_converge_on_stationary_data(name):
    """After 2,000 finishes from a stationary log-normal (median 150), the estimate is within
    8% of the true median: the band is the quantile histogram's bin width (9%, half of it
    either side) plus the sampling error of a forgotten estimate (half-life ~300-500
    observations: ~2% at sigma 0.5)."""
    est = stream(make_corrector(name), lognormal_lengths(0, 2000, 150.0))
    assert abs(np.median(est[-200:]) / 150.0 - 1) < 0.08


@pytest.mark.parametrize("name", ["ewma", "ewma_tenant"])
def test_ewma_converges_to_the_mean_ratio(name):
    """The study's EWMA learns ``bias = E[actual / base]`` (clipped): its estimate converges to
    ``base * input_factor * E[actual] / base`` = 1.2 x the mean for a 200-token prompt."""
    lengths = lognormal_lengths(1, 2000, 150.0)
    est = stream(make_corrector(name), lengths)
    expected = 1.2 * lengths.mean()  # input factor 1 + 200/1000; safety 1.0 for standard
    assert abs(est[-200:].mean() / expected - 1) < 0.08


@pytest.mark.parametrize(
    ("name", "finishes"),
    [
        ("ewma", 60),
        ("ewma_tenant", 60),
        ("quantile", 1200),
        ("lognormal", 900),
        ("regression", 900),
    ],  # fmt: skip
)
def test_each_learned_corrector_tracks_a_step_drift_within_its_stated_finishes(name, finishes):
    """Outputs double after 2,000 finishes; within ``finishes`` more the estimate has covered
    90% of the step (in log terms). The figures follow from the forgetting: EWMA alpha 0.1
    (~22 finishes to 90%), histogram half-life 500 (the median moves once over half the weight
    is new, ~700-1,000), log-normal half-life 300 and the ridge regression lam 0.998 (~350)."""
    c = make_corrector(name)
    before = stream(c, lognormal_lengths(2, 2000, 150.0))
    after = stream(c, lognormal_lengths(3, finishes + 100, 300.0), start=2000)
    lo = np.log(np.median(before[-100:]))
    target = lo + 0.9 * math.log(2.0)
    assert np.log(np.median(after[finishes - 50 : finishes + 50])) >= target - 0.02


def test_ewma_tenant_keeps_one_tenants_drift_to_that_tenant():
    """One tenant's outputs triple: its estimates follow, the other tenant's do not (the
    per-category ``ewma`` moves both)."""
    lengths = lognormal_lengths(4, 1500, 150.0)
    per_tenant, shared = make_corrector("ewma_tenant"), make_corrector("ewma")
    for c in (per_tenant, shared):
        for k, n in enumerate(lengths):
            a = adm(k, tenant="a" if k % 2 else "b")
            c.estimate(a)
            c.observe(a, int(n * (3 if k % 2 and k > 500 else 1)))
    quiet = adm(99999, tenant="b")
    assert per_tenant.estimate(quiet) < 0.7 * shared.estimate(quiet)


def test_regression_learns_a_length_that_grows_with_the_prompt():
    rng = np.random.default_rng(5)
    c = make_corrector("regression")
    for k in range(3000):
        prompt = int(rng.integers(50, 1500))
        a = adm(k, prompt=prompt)
        c.estimate(a)
        c.observe(a, max(1, int(0.4 * prompt * math.exp(0.2 * rng.standard_normal()))))
    short, long = c.estimate(adm(0, prompt=100)), c.estimate(adm(0, prompt=1000))
    assert 6 < long / short < 14  # the truth: 10x


def test_memory_is_bounded_by_categories_not_observations():
    c = make_corrector("quantile")
    stream(c, lognormal_lengths(6, 5000, 150.0))
    assert len(c.hist) == 1 and c.hist["summary"].weights.size == 128
    r = make_corrector("regression")
    for k in range(300):  # 300 distinct tenants: the model stays 31 numbers wide
        a = adm(k, tenant=f"t{k}")
        r.estimate(a)
        r.observe(a, 100)
    assert r.w.size == 31 and r.A.shape == (31, 31)


def test_heuristics_use_only_client_visible_fields():
    a = adm(0, prompt=300)
    assert make_corrector("max_tokens").estimate(a) == a.max_tokens
    assert make_corrector("input_ratio").estimate(a) == 450
    assert make_corrector("input_ratio", {"ratio": 10}).estimate(a) == a.max_tokens  # capped


# -- distributions and the policy that reads them ----------------------------------------------
def test_lognormal_distribution_matches_monte_carlo():
    d = LogNormal(math.log(100.0), 0.6)
    x = np.exp(d.mu + d.sigma * np.random.default_rng(0).standard_normal(400_000))
    assert d.mean == pytest.approx(x.mean(), rel=0.01)
    assert d.quantile(0.9) == pytest.approx(np.quantile(x, 0.9), rel=0.01)
    tail = x[x >= np.quantile(x, 0.9)].mean()
    assert d.cvar(0.9) == pytest.approx(tail, rel=0.02)


def test_histogram_quantiles_interpolate_within_bins():
    edges = np.array([1.0, 2.0, 4.0, 8.0])
    h = Histogram(edges, np.array([1.0, 2.0, 1.0]))
    assert h.quantile(0.25) == pytest.approx(2.0)
    assert h.quantile(0.5) == pytest.approx(2.0 * math.sqrt(2.0))
    assert h.cvar(0.5) > h.quantile(0.5)


def test_sjf_tail_orders_by_the_tail_and_is_sjf_without_a_distribution():
    trace = generate("poisson", requests=400, seed=0, rate_per_s=6.0)
    plain = simulate(trace, policy="sjf", corrector="ewma", max_concurrency=8)
    tail = simulate(trace, policy="sjf_tail", corrector="ewma", max_concurrency=8)
    assert tail.records["dispatch_order"].equals(plain.records["dispatch_order"])
    with_dist = simulate(trace, policy="sjf_tail", corrector="lognormal", max_concurrency=8)
    by_mean = simulate(trace, policy="sjf_tail", corrector="lognormal",
                       policy_params={"alpha": 0.0}, max_concurrency=8)  # fmt: skip
    assert with_dist.records["finished"].all()
    # lognormal's sigma differs per category: the tail reorders what the mean ranks
    assert not with_dist.records["dispatch_order"].equals(by_mean.records["dispatch_order"])


# -- drift scenarios ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base():
    return generate("poisson", requests=3000, seed=0)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_is_seeded_fits_the_context_and_keeps_every_request(base, name):
    a, b = apply_scenario(base, name, seed=1), apply_scenario(base, name, seed=1)
    assert a.frame.equals(b.frame) and len(a) == len(base)
    f = a.frame
    assert ((f["prompt_tokens"] + f["output_tokens"]) <= 2048).all()
    assert (f["max_tokens"] >= f["output_tokens"]).all()
    assert a.meta["drift_scenario"]["name"] == name


def test_scenarios_change_what_they_say_from_the_change_point(base):
    change = apply_scenario(base, "model_upgrade").meta["drift_scenario"]["change_s"]
    late = base.frame["arrival_s"] >= change

    def ratio(name):
        f, b = apply_scenario(base, name).frame, base.frame
        late_ratio = f.loc[late, "output_tokens"].sum() / b.loc[late, "output_tokens"].sum()
        return late_ratio, (f.loc[~late, "output_tokens"] == b.loc[~late, "output_tokens"]).all()

    assert ratio("stationary") == (1.0, True)
    up, same = ratio("model_upgrade")
    assert same and 1.3 < up <= 1.4  # x1.4, a few clipped to the context
    down, same = ratio("step")
    assert same and down == pytest.approx(0.6, abs=0.01)
    shifted = apply_scenario(base, "mix_shift").frame
    long_share = shifted.loc[late, "category"].isin(["report", "technical"]).mean()
    assert long_share > base.frame.loc[late, "category"].isin(["report", "technical"]).mean() + 0.3
    newcomer = apply_scenario(base, "new_tenant").frame
    assert set(newcomer.loc[late, "tenant"]) > set(base.frame["tenant"])
    assert (newcomer.loc[~late, "tenant"] != "tenant-new").all()


def test_a_bad_scenario_parameter_is_one_line(base):
    with pytest.raises(InputError, match="drift scenario ramp"):
        apply_scenario(base, "ramp", at=0.8, end=0.5)
    with pytest.raises(InputError, match="factor"):
        apply_scenario(base, "step", factor=-1)


# -- the drift bench ---------------------------------------------------------------------------
def test_recovery_is_the_time_until_the_bias_is_back_to_its_level_before_the_change():
    import pandas as pd

    t = np.arange(400.0)
    true = np.full(400, 100)
    # biased +20% before the change, +80% for 60 requests after it, then +24%
    est = np.where(t < 200, 120, np.where(t < 260, 180, 124))
    rec = pd.DataFrame({"arrival_s": t, "estimate_tokens": est, "output_tokens": true})
    # a window of 20 holding k requests still off by 80 (the rest by 24) has relative bias
    # (56k + 480) / 2000; within 0.1 of the level 0.2 for k <= 2: the first such window ends
    # 77 requests in, and every later one is inside too (it holds: that is the recovery)
    assert recovery_s(rec, 200.0, window=20, tolerance=0.1) == pytest.approx(77.0)
    blip = rec.assign(estimate_tokens=np.where((t >= 200) & (t < 300) & (t % 50 != 0), 180, 124))
    blip.loc[t < 200, "estimate_tokens"] = 120  # one request per 50 on target: no recovery yet
    assert recovery_s(blip, 200.0, window=20, tolerance=0.1) > 100
    static = rec.assign(estimate_tokens=np.where(t < 200, 120, 200))  # the change stays
    assert math.isnan(recovery_s(static, 200.0, window=20, tolerance=0.1))


def test_the_drift_bench_ranks_estimators_and_is_deterministic():
    s = DriftBenchSettings(
        scenarios=["model_upgrade", "stationary"],
        correctors=["none", "ewma", "lognormal", "oracle"],
        requests=800,
    )
    one, two = run_drift_bench(s), run_drift_bench(s, workers=2)
    assert one.table.equals(two.table) and one.windows.equals(two.windows)
    t = one.table.set_index(["scenario", "corrector"])
    assert t.loc[("model_upgrade", "oracle"), "mae_tokens"] == 0
    assert t.loc[("model_upgrade", "oracle"), "kendall_tau"] == pytest.approx(1.0)
    for sc in ("model_upgrade", "stationary"):
        assert t.loc[(sc, "ewma"), "mae_tokens"] < t.loc[(sc, "none"), "mae_tokens"]
    assert math.isnan(t.loc[("model_upgrade", "none"), "recovery_s"])  # static: never unbiased
    assert (one.table["finished"] == 800).all()
    assert "PRIOR" in one.note


def test_cli_drift_bench_writes_its_tables_and_figures(tmp_path):
    out = tmp_path / "db"
    r = run_cli("drift-bench", "--scenarios", "step", "--correctors", "none,quantile",
                "--requests", "400", "--workers", "1", "-o", out)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "PRIOR" in r.stdout and "which corrector wins where" in r.stdout
    data = json.loads((out / "drift_bench.json").read_text())
    assert data["cost_model"].startswith("cost model:") and len(data["rows"]) == 2
    assert (out / "drift_step.png").stat().st_size > 0
    bad = run_cli("drift-bench", "--scenarios", "nope", "-o", tmp_path / "bad")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "nope" in bad.stderr


# -- what the estimator could know (the study's two variants) ----------------------------------
class Seen:
    """A corrector that remembers what it was shown."""

    def __init__(self):
        self.categories, self.prompts, self.observed = [], [], []

    def estimate(self, a):
        self.categories.append(a.category)
        self.prompts.append(a.prompt_tokens)
        return 100

    def observe(self, a, n):
        self.observed.append((a.index, n))


def test_the_words_view_shows_the_corrector_words_and_counts_the_error_in_words():
    trace = generate("driftsched-paper", requests=600, seed=0)
    seen = Seen()
    view = {"length_unit": "words", "seed": 3}
    res = simulate(trace, corrector=seen, estimator_view=view)
    rec = res.records
    words = rec.set_index(rec.index)["observed_length"]
    assert {i: n for i, n in seen.observed} == {i: int(words.iat[i]) for i, _ in seen.observed}
    ratio = rec["observed_length"].sum() / rec["output_tokens"].sum()
    assert 0.7 < ratio < 0.8  # 0.75 words per token on average
    assert np.mean(seen.prompts) < 0.8 * rec["prompt_tokens"].mean()
    err = (rec["estimate_tokens"] - rec["observed_length"]).abs().mean()
    assert res.summary().iloc[0]["est_mae_tokens"] == pytest.approx(err)
    again = simulate(trace, corrector="ewma", estimator_view=view).records
    assert again["observed_length"].equals(rec["observed_length"])  # seeded


def test_category_confusion_misleads_the_corrector_on_the_stated_share():
    trace = generate("driftsched-paper", requests=3000, seed=0)
    seen = Seen()
    res = simulate(trace, corrector=seen, estimator_view={"category_confusion": 0.3})
    rec = res.records.sort_values("dispatch_order")
    wrong = (rec["classified_category"].astype(str) != rec["category"].astype(str)).mean()
    assert 0.27 < wrong < 0.33
    by_arrival = res.records.sort_values("arrival_s", kind="stable")
    assert seen.categories == by_arrival["classified_category"].astype(str).tolist()


def test_the_default_view_adds_nothing():
    rec = simulate(generate("driftsched-paper", requests=300, seed=0)).records
    assert "observed_length" not in rec.columns and "classified_category" not in rec.columns


def test_the_paper_reports_both_variants_and_each_mechanism():
    from driftsched.sim.studies.paper import default_settings, headline, reproduce

    settings = default_settings(requests=600, seeds=[0], policies=["fifo", "sjf"])
    result = reproduce(settings)
    v = result.variants().set_index("variant")
    assert list(v.index) == ["with-tokenizer", "words only", "confusion only", "with-split"]
    ours = headline(result.table())["est_mae_change"]
    assert v.loc["with-tokenizer", "est_mae_change"] == pytest.approx(ours)
    assert v.loc["with-split", "length_unit"] == "words"
    assert v.loc["with-split", "category_confusion"] == 0.25
    assert "estimator variants" in result.accounting_line()


def test_a_drift_scenario_applies_to_an_imported_real_trace(shared_traces, tmp_path):
    """The Azure 2023 conversation trace, imported, then a model upgrade from its midpoint:
    later outputs x1.4 (some clipped to the context), earlier ones untouched; the drift bench
    takes the trace file as its base."""
    from driftsched.traces.importers import import_trace

    azure = import_trace("azure", shared_traces / "azure_2023/AzureLLMInferenceTrace_conv.csv")
    up = apply_scenario(azure, "model_upgrade", max_total_tokens=8192)
    late = azure.frame["arrival_s"] >= up.meta["drift_scenario"]["change_s"]
    ratio = up.frame.loc[late, "output_tokens"].sum() / azure.frame.loc[late, "output_tokens"].sum()
    assert 1.3 < ratio <= 1.4
    assert up.frame.loc[~late, "output_tokens"].equals(azure.frame.loc[~late, "output_tokens"])
    path = azure.write(tmp_path / "azure.parquet")
    s = DriftBenchSettings(
        base=str(path), requests=600, scenarios=["step"], correctors=["none", "ewma"],
        oversize="drop",
    )  # fmt: skip
    table = run_drift_bench(s).table  # the rows longer than the 2,048-token context dropped
    assert (table["finished"] == table["requests"]).all() and (table["requests"] < 600).all()
