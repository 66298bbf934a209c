"""The engine model: exact logs of hand-computed cases, and the fast engine equals the reference
engine step for step over random workloads (Hypothesis)."""

from __future__ import annotations

import pytest
from driftsched.sim.engine import ReferenceEngine
from driftsched.sim.fastengine import FastEngine
from driftsched.sim.prefixcache import Prefix
from driftsched.sim.profile import EngineSettings
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

ENGINES = [ReferenceEngine, FastEngine]
NAMES = "AB"


def drive(engine, requests, arrivals=None, max_steps=100_000):
    """Run ``requests`` (``(prompt_tokens, target_tokens)``, indexed by position) to completion;
    log per step: tick, scheduled tokens, preempted, admitted, first tokens, finished (by
    name), free blocks. ``arrivals``: step at which each request is added. Returns the log and
    the engine's request objects, by index."""
    arrivals = arrivals or [0] * len(requests)
    pending = sorted(range(len(requests)), key=lambda i: arrivals[i])
    made = [None] * len(requests)
    log, step = [], 0
    while pending or engine.has_work():
        while pending and arrivals[pending[0]] <= step:
            i = pending.pop(0)
            made[i] = engine.add(i, *requests[i])
        if engine.has_work():
            plan = engine.schedule()
            tokens = engine.scheduled_tokens(plan)
            out = engine.complete(plan)
            getattr(engine, "materialise_all", lambda: None)()
            if getattr(engine, "caching", False):  # shared blocks are held once
                held = {b for r in engine.running.values() for b in r.blocks}
                assert all(len(r.blocks) == r.num_blocks for r in engine.running.values())
                used = len(held)
            else:
                used = sum(r.num_blocks for r in engine.running.values())
            assert used == engine.pool.used <= engine.pool.capacity
            log.append(
                (
                    plan.tick,
                    sorted(tokens.items()),
                    [r.index for r in plan.preempted],
                    [r.index for r in plan.admitted],
                    sorted(r.index for r in out.first_token),
                    sorted(r.index for r in out.finished),
                    engine.pool.free,
                    plan.shape,
                    getattr(engine.pool, "hit_tokens", 0),
                )
            )
        step += 1
        assert step < max_steps, "engine did not drain"
    return log, made


def brief(log):
    return [entry[:6] for entry in log]


@pytest.mark.parametrize("cls", ENGINES)
def test_chunked_prefill_and_first_tokens_exact_log(cls):
    eng = cls(
        EngineSettings(
            block_size=4,
            num_gpu_blocks=100,
            max_num_seqs=4,
            max_num_batched_tokens=8,
            max_model_len=64,
        )
    )
    log, (a, b) = drive(eng, [(6, 3), (5, 2)])
    assert brief(log) == [
        (0, [(0, 6), (1, 2)], [], [0, 1], [0], []),  # A prefills; B gets a 2-token chunk
        (1, [(0, 1), (1, 3)], [], [], [1], []),  # A decodes; B finishes its prefill
        (2, [(0, 1), (1, 1)], [], [], [], [0, 1]),
    ]
    shape0 = log[0][7]
    assert shape0.prefill_tokens == 8 and shape0.prefill_requests == 2
    assert shape0.prefill_attention == 6 * 7 / 2 + 2 * 3 / 2
    assert log[1][7].decode_requests == 1 and log[1][7].decode_context_tokens == 7
    assert log[1][7].prefill_attention == 3 * 2 + 3 * 4 / 2
    assert a.num_output_tokens == 3 and b.num_output_tokens == 2


@pytest.mark.parametrize("cls", ENGINES)
def test_kv_shortage_preempts_the_last_running_request_exact_log(cls):
    eng = cls(
        EngineSettings(
            block_size=2,
            num_gpu_blocks=5,
            max_num_seqs=4,
            max_num_batched_tokens=16,
            max_model_len=8,
        )
    )
    log, (a, b) = drive(eng, [(3, 4), (3, 4)])
    assert brief(log) == [
        (0, [(0, 3), (1, 3)], [], [0, 1], [0, 1], []),
        (1, [(0, 1), (1, 1)], [], [], [], []),
        (2, [(0, 1)], [1], [], [], []),  # A needs a 3rd block: B (last) is preempted
        (3, [(0, 1)], [], [], [], [0]),  # B cannot come back until A frees its blocks
        (4, [(1, 5)], [], [1], [], []),  # B recomputes prompt + its 2 outputs; samples #3
        (5, [(1, 1)], [], [], [], [1]),
    ]
    assert b.num_preemptions == 1 and b.num_output_tokens == 4 and a.num_preemptions == 0


@pytest.mark.parametrize("cls", ENGINES)
def test_max_num_seqs_and_no_chunking(cls):
    eng = cls(
        EngineSettings(
            block_size=16,
            num_gpu_blocks=100,
            max_num_seqs=1,
            max_num_batched_tokens=64,
            max_model_len=64,
            enable_chunked_prefill=False,
        )
    )
    log, _ = drive(eng, [(10, 2), (10, 1)])
    assert brief(log) == [
        (0, [(0, 10)], [], [0], [0], []),
        (1, [(0, 1)], [], [], [], [0]),  # max_num_seqs = 1 keeps B waiting
        (2, [(1, 10)], [], [1], [1], [1]),  # one output token: done after its prefill
    ]


@st.composite
def workloads(draw, caching=False):
    block = draw(st.sampled_from([1, 2, 4, 16]))
    max_len = draw(st.sampled_from([32, 64, 128]))
    chunked = draw(st.booleans())
    seqs = draw(st.integers(1, 8))
    budget = draw(st.integers(max(seqs, 4), 64)) if chunked else max_len + draw(st.integers(0, 32))
    min_blocks = -(-max_len // block) + 1
    blocks = draw(st.integers(min_blocks, (2 if caching else 3) * min_blocks))
    s = EngineSettings(
        block_size=block,
        num_gpu_blocks=blocks,
        max_num_seqs=seqs,
        max_num_batched_tokens=budget,
        max_model_len=max_len,
        enable_chunked_prefill=chunked,
        enable_prefix_caching=caching,
    )
    n = draw(st.integers(1, 20))
    reqs = []
    chunk = draw(st.sampled_from([1, 2, 3, 4, 8]))
    for _ in range(n):
        prompt = draw(st.integers(1, max_len - 1))
        output = draw(st.integers(1, max_len - prompt))
        if caching and draw(st.integers(0, 4)):  # shared chunks, a tiny alphabet: many hits
            ids = draw(st.lists(st.integers(0, 1), max_size=-(-prompt // chunk)))
            reqs.append((prompt, output, Prefix(chunk, tuple(ids))))
        else:
            reqs.append((prompt, output))
    arrivals = sorted(draw(st.lists(st.integers(0, 30), min_size=n, max_size=n)))
    return s, reqs, arrivals


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_fast_engine_equals_reference_engine(case):
    s, reqs, arrivals = case
    logs, objs = [], []
    for cls in ENGINES:
        log, made = drive(cls(s), reqs, arrivals)
        logs.append(log)
        objs.append(made)
    assert logs[0] == logs[1]
    for made in objs:  # every request generated exactly its target, nothing left allocated
        assert [r.num_output_tokens for r in made] == [r[1] for r in reqs]
    if any(entry[2] for entry in logs[0]):
        event("preempted")
    if logs[0] and logs[0][-1][-1]:
        event("prefix cache hits")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(caching=True))
@example(  # the preemption walk must count only the victim's own blocks as freed
    (
        EngineSettings(
            block_size=1,
            num_gpu_blocks=36,
            max_num_seqs=6,
            max_num_batched_tokens=32,
            max_model_len=32,
            enable_chunked_prefill=False,
            enable_prefix_caching=True,
        ),
        [(1, 1), (1, 2), (1, 4), (13, 4, Prefix(1, (0,))), (10, 4), (1, 1), (1, 3), (1, 1)]
        + [(2, 2, Prefix(1, (0,)))],
        [0] * 9,
    )
)
def test_fast_engine_equals_reference_engine_with_prefix_caching(case):
    """Same step log (hits included) with prefix caching on, preemptions and self-hits after
    them included; every block is back in the pool at the end."""
    test_fast_engine_equals_reference_engine.hypothesis.inner_test(case)
    s, reqs, arrivals = case
    for cls in ENGINES:
        eng = cls(s)
        drive(eng, reqs, arrivals)
        assert eng.pool.free == eng.pool.capacity


@pytest.mark.parametrize("cls", ENGINES)
@pytest.mark.parametrize("reserve", [True, False])
def test_a_waiting_request_is_admitted_only_if_its_whole_prompt_fits(cls, reserve):
    """vLLM 0.32 (``scheduler_reserve_full_isl``): B's first chunk would fit in the 2 free
    blocks, but its 12-token prompt needs 3, so B waits until A is done; without the rule the
    old behaviour admits the chunk at once."""
    eng = cls(
        EngineSettings(
            block_size=4,
            num_gpu_blocks=6,  # 5 usable
            max_num_seqs=4,
            max_num_batched_tokens=8,
            max_model_len=20,
            reserve_full_prompt=reserve,
        )
    )
    log, (a, b) = drive(eng, [(8, 5), (12, 2)])
    admitted = [entry[3] for entry in log]
    assert admitted[0] == [0]  # A takes the whole budget at step 0
    if reserve:
        # A holds 3 blocks from step 1 (9 tokens): 2 free < 3 needed by B's prompt
        assert admitted[1] == [] and 1 in sum(admitted, [])
        first_b = next(k for k, adm in enumerate(admitted) if 1 in adm)
        assert 0 in sum((entry[5] for entry in log[:first_b]), [])  # only after A finished
    else:
        assert admitted[1] == [1]  # a 7-token chunk (2 blocks) goes in next to A's decode
    assert a.num_output_tokens == 5 and b.num_output_tokens == 2


@pytest.mark.parametrize("cls", ENGINES)
def test_prefix_cache_hits_skip_prefill_exact_log(cls):
    """Block 4. A (10 tokens, chunks of 4: ids 7, 8, then its own) prefills alone; B shares
    A's first 8 tokens and arrives after A's prefill: it hits 2 blocks, so its chunk is the 2
    tokens after them. C's 8-token prompt is all shared but its last token is recomputed: 1
    hit block, a 4-token chunk. D shares nothing (id 9 first)."""
    eng = cls(
        EngineSettings(
            block_size=4,
            num_gpu_blocks=40,
            max_num_seqs=8,
            max_num_batched_tokens=64,
            max_model_len=32,
            enable_prefix_caching=True,
        )
    )
    shared = Prefix(4, (7, 8))
    reqs = [(10, 3, shared), (10, 2, shared), (8, 2, shared), (10, 2, Prefix(4, (9, 8)))]
    log, made = drive(eng, reqs, arrivals=[0, 1, 1, 1])
    assert brief(log)[:2] == [
        (0, [(0, 10)], [], [0], [0], []),
        (1, [(0, 1), (1, 2), (2, 4), (3, 10)], [], [1, 2, 3], [1, 2, 3], []),
    ]
    chunk_b, chunk_c = log[1][7], None
    assert chunk_b.prefill_tokens == 16 and chunk_b.prefill_requests == 3
    # attention pairs: B 2 tokens after 8, C 4 after 4, D 10 fresh
    assert chunk_b.prefill_attention == (2 * 8 + 3) + (4 * 4 + 10) + 55
    assert eng.pool.hit_tokens == 8 + 4 and chunk_c is None
    assert eng.pool.free == eng.pool.capacity  # all finished: every block free (and cached)


@pytest.mark.parametrize("cls", ENGINES)
def test_a_preempted_request_hits_its_own_blocks_again(cls):
    """Recompute preemption with prefix caching: the victim's freed blocks stay cached, so
    when it is re-admitted its computed blocks (prompt and generated tokens) are hits."""
    eng = cls(
        EngineSettings(
            block_size=4,
            num_gpu_blocks=8,  # 7 usable
            max_num_seqs=4,
            max_num_batched_tokens=64,
            max_model_len=28,
            reserve_full_prompt=False,
            enable_prefix_caching=True,
        )
    )
    log, made = drive(eng, [(12, 10), (12, 10)])
    preempted = [e for e in log if e[2]]
    assert preempted, "the pool is small enough to preempt"
    assert eng.pool.hit_tokens > 0  # the victim came back to its own cached blocks
    assert [r.num_output_tokens for r in made] == [10, 10]


def test_preempting_a_request_that_shares_blocks_frees_only_its_own():
    """A and B share two prefix blocks (B hit them). When decoding runs the pool dry, B (the
    last) is preempted: only its own blocks return; the shared ones stay with A. Both
    engines, step for step."""
    s = EngineSettings(
        block_size=2,
        num_gpu_blocks=9,  # 8 usable
        max_num_seqs=4,
        max_num_batched_tokens=64,
        max_model_len=16,
        reserve_full_prompt=False,
        enable_prefix_caching=True,
    )
    shared = Prefix(2, (1, 2))
    reqs = [(6, 9, shared), (6, 9, shared), (6, 9, shared)]
    logs = []
    for cls in ENGINES:
        log, made = drive(cls(s), reqs, arrivals=[0, 1, 1])
        logs.append(log)
        assert [r.num_output_tokens for r in made] == [9, 9, 9]
    assert logs[0] == logs[1]
    assert any(e[2] for e in logs[0]) and logs[0][-1][-1] > 0
