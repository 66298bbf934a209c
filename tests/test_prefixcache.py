"""The prefix-cache block pool against vLLM V1's rules (block_pool.py, kv_cache_manager.py):
keys chain over the shared chunks, the last token is always recomputed, freed blocks keep
their keys until popped, tail blocks are evicted first, touching takes a block off the free
queue."""

from __future__ import annotations

from driftsched.sim.enginestate import EngineRequest
from driftsched.sim.prefixcache import Prefix, PrefixCache


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
