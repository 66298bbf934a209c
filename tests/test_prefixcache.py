"""The prefix-cache block pool against vLLM V1's rules (block_pool.py, kv_cache_manager.py):
keys chain over the shared chunks, the last token is always recomputed, freed blocks keep
their keys until popped, tail blocks are evicted first, touching takes a block off the free
queue."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest
from driftsched.sim.enginestate import EngineRequest
from driftsched.sim.prefixcache import FreeQueue, Prefix, PrefixCache


def request(index, prompt, ids=None, chunk=4, outputs=0):
    r = EngineRequest(index, prompt, 10, num_output_tokens=outputs)
    r.prefix = Prefix(chunk, tuple(ids)) if ids is not None else None
    return r


def hold(pool, req, blocks):
    """``req`` takes ``blocks`` fresh blocks and registers those its prompt fills."""
    pool.grow(req, blocks)
    req.num_blocks = blocks
    pool.register(req, req.num_tokens)


def test_keys_chain_over_the_shared_chunks_only():
    pool = PrefixCache(32, 4)
    a, b = request(0, 12, [1, 2]), request(1, 12, [1, 2])
    c = request(2, 12, [5, 2])  # different first chunk: nothing shared, even block 1
    assert [pool.key(a, j) for j in range(2)] == [pool.key(b, j) for j in range(2)]
    assert pool.key(a, 2) != pool.key(b, 2)  # past the chunks: each request's own
    assert pool.key(c, 1) != pool.key(a, 1)
    d = request(3, 6, [1, 2])  # a 6-token prompt: block 1 (tokens 4-7) is not its prompt's
    assert pool.key(d, 0) == pool.key(a, 0) and pool.key(d, 1) != pool.key(a, 1)


def test_lookup_stops_one_token_short_and_at_the_first_miss():
    pool = PrefixCache(32, 4)
    a = request(0, 12, [1, 2, 3])
    hold(pool, a, 3)
    assert len(pool.lookup(request(1, 12, [1, 2, 3]))) == 2  # (12 - 1) // 4: last recomputed
    assert len(pool.lookup(request(2, 13, [1, 2, 3]))) == 3
    assert len(pool.lookup(request(3, 13, [1, 9, 3]))) == 1


def test_freed_blocks_stay_cached_and_tail_blocks_are_evicted_first():
    pool = PrefixCache(5, 4)  # 4 usable
    a = request(0, 16, [1, 2, 3, 4])
    hold(pool, a, 3)  # blocks for 12 tokens, all registered under shared keys
    assert pool.free == 1
    pool.release(a)
    assert pool.free == 4 and pool.cached_blocks == 3
    b = request(1, 16, [1, 2, 3, 4])
    assert len(pool.lookup(b)) == 3  # freed, still cached
    pool.take(2)  # the never-used block, then a's *last* block (released first)
    assert pool.cached_blocks == 2 and len(pool.lookup(b)) == 2


def test_touching_a_free_hit_block_takes_it_off_the_free_queue():
    pool = PrefixCache(6, 4)
    a = request(0, 9, [1, 2])
    hold(pool, a, 3)
    pool.release(a)
    b = request(1, 9, [1, 2])
    hit = pool.lookup(b)
    assert len(hit) == 2 and pool.evictable(hit) == 2
    free = pool.free
    pool.touch(b, hit)
    assert pool.free == free - 2 and pool.freed_by(b) == 2
    c = request(2, 9, [1, 2])
    hit_c = pool.lookup(c)
    assert hit_c == hit and pool.evictable(hit_c) == 0  # held by b: not free
    pool.touch(c, hit_c)
    assert pool.freed_by(c) == 0  # shared with b: releasing c frees nothing
    pool.release(c)
    assert pool.free == free - 2
    pool.release(b)
    assert pool.free == free


@pytest.mark.parametrize("a_first", [True, False])
def test_a_key_two_blocks_hold_is_found_while_either_is_cached(a_first):
    """Two requests that computed the same shared blocks (neither was cached when the other
    started) both register them, as vLLM keeps both blocks under the hash: a lookup finds the
    oldest registration; once a block is reused, the other one."""
    pool = PrefixCache(16, 4)  # labels 1-15
    a, b = request(0, 13, [1, 2, 3]), request(1, 13, [1, 2, 3])
    hold(pool, a, 3)  # labels 1, 2, 3
    hold(pool, b, 3)  # labels 4, 5, 6: the same keys again
    assert pool.cached_blocks == 6
    c = request(2, 13, [1, 2, 3])
    assert pool.lookup(c) == [1, 2, 3]
    for r in (a, b) if a_first else (b, a):
        pool.release(r)  # tail first onto the free queue, after the 9 never-used labels
    pool.take(9 + 1)
    if a_first:  # label 3 reused: block 2 is found in b's copy
        assert pool.lookup(c) == [1, 2, 6]
        pool.take(2)  # labels 2, 1
        assert pool.lookup(c) == [4, 5, 6] and pool.cached_blocks == 3
    else:  # b's label 6 reused: a's copies are still the oldest
        assert pool.lookup(c) == [1, 2, 3]
        pool.take(2)  # labels 5, 4
        assert pool.lookup(c) == [1, 2, 3] and pool.cached_blocks == 3
    pool.take(3)
    assert pool.lookup(c) == [] and pool.cached_blocks == 0


@pytest.mark.parametrize("blocks", [1, 3, 12])
@pytest.mark.parametrize("pop_share", [0.02, 0.3, 0.7])
@pytest.mark.parametrize("seed", range(4))
def test_the_free_queue_keeps_an_ordered_dicts_order(blocks, pop_share, seed):
    """Take from the head, remove from anywhere, append at the tail: the order is that of an
    ``OrderedDict`` of the free labels, through the lazy deletion, the cut-off head (many
    takes: ``pop_share`` 0.3, 0.7) and the rebuilds (long runs of removals and re-appends, as
    cache hits on free blocks make: 0.02)."""
    rnd = random.Random(seed)
    queue, model = FreeQueue(range(1, blocks + 1)), OrderedDict.fromkeys(range(1, blocks + 1))
    held: list[int] = []
    for _ in range(4000):
        if model and rnd.random() < pop_share:
            n = rnd.randint(1, len(model))
            got: list[int] = []
            queue.pop_into(got, n)
            assert got == [model.popitem(last=False)[0] for _ in range(n)]
            held += got
        elif model and rnd.random() < 0.5:
            label = rnd.choice(list(model))
            del model[label]
            queue.remove(label)
            held.append(label)
        elif held:
            label = held.pop(rnd.randrange(len(held)))
            model[label] = None
            queue.append(label)
        assert queue.size == len(model)
    assert queue._base > 0  # the list was cut or rebuilt: those paths ran
    got = []
    queue.pop_into(got, queue.size)
    assert got == list(model)


def test_live_prompt_ids_are_shared_exactly_where_the_prefix_says():
    """The live engine's token ids (calibrate.vllm_engine.prompt_ids): equal inside shared
    chunks, the request's own elsewhere, deterministic, inside the tiny model's vocabulary."""
    from driftsched.calibrate.vllm_engine import FIRST_ID, ID_SPAN, prompt_ids

    p = Prefix(16, tuple(range(50)))
    a, b = prompt_ids("q1", 900, p), prompt_ids("q2", 850, p)
    assert a[:800] == b[:800] and a == prompt_ids("q1", 900, p)
    assert sum(x == y for x, y in zip(a[800:850], b[800:850], strict=True)) < 5
    other = prompt_ids("q1", 900, Prefix(16, (99, *range(1, 50))))
    assert other[:16] != a[:16]
    own = prompt_ids("q1", 300), prompt_ids("q2", 300)
    assert sum(x == y for x, y in zip(*own, strict=True)) < 5
    assert min(a) >= FIRST_ID and max(a) < FIRST_ID + ID_SPAN and len(a) == 900
