"""Automatic prefix caching, as vLLM V1's block pool and KV-cache manager do it.

Read from vLLM 0.32's ``vllm/v1/core/block_pool.py``, ``kv_cache_manager.py`` and
``single_type_kv_cache_manager.py`` (full attention, one KV-cache group):

- **Block identity.** A *full* block of a request is named by a hash chained over every token
  up to its end, so two requests share block ``j`` exactly when their first ``(j + 1) *
  block_size`` tokens are equal. Here tokens are not simulated: a request carries a
  :class:`Prefix` — ids of fixed-size chunks of its prompt (Mooncake's ``hash_ids`` per
  512-token block, or a generator's system prompts and conversation history) — and block ``j``
  is shared when it lies wholly inside those chunks; its key chains the chunk ids it overlaps.
  Every other block (past the chunks, the generated tokens) is the request's own: a key no
  other request has, which only the request itself can hit again (after a preemption).
- **Lookup** (``get_computed_blocks``) for a request with nothing computed (new, or preempted:
  recompute): the longest run of leading blocks whose keys are cached, at most ``(num_tokens -
  1) // block_size`` blocks (the last token is always recomputed, for its logits). The hit
  tokens count as computed: the request's first chunk starts after them.
- **Admission** (``allocate_slots``): blocks to allocate = blocks for the tokens that will be
  held - hit blocks + hit blocks that are *evictable* (free, ref count 0: touching takes them
  out of the free queue); with ``full_sequence_must_fit`` the same count over the whole
  sequence must fit first. On success the hit blocks are touched (ref count + 1) and new blocks
  taken.
- **Free queue.** Allocation pops blocks from the head (least recently freed); a popped block
  that still carries a key is evicted from the cache then. Freed blocks (finish, preemption) are
  released in reverse order — tail blocks first — and appended to the tail *with* their keys:
  a freed block is cached and free at once until it is popped.
- **Caching** (``cache_blocks``): when a request is given tokens, every block they fill is
  registered under its key at that moment (before the step computes them), so a request
  admitted later in the same step can already hit them.

Block labels are integers ``1 .. num_gpu_blocks - 1`` (label 0 is vLLM's null block). Which
label a request gets is unobservable — only keys, reference counts and the free queue's order
are — which lets the fast engine hand out the blocks its decoders take in a run lazily
(:meth:`PrefixCache.take` then :meth:`PrefixCache.sync`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from driftsched.traces.schema import parse_prefix


class Prefix(NamedTuple):
    """What a request's prompt shares with others: ``chunk_ids[i]`` names prompt tokens
    ``[i * chunk_tokens, (i + 1) * chunk_tokens)``; equal ids at equal positions mean equal
    tokens *given equal ids before them* (keys chain). Tokens past the chunks are the request's
    own."""

    chunk_tokens: int
    chunk_ids: tuple[int, ...]


def prefix_cells(frame):
    """A trace frame's ``prefix`` column as an object array (None where empty), or None."""
    if "prefix" not in frame.columns:
        return None
    return frame["prefix"].to_numpy(dtype=object, na_value=None)


def prefix_at(cells, index: int) -> Prefix | None:
    """Row ``index``'s :class:`Prefix` from :func:`prefix_cells` (None: it shares nothing)."""
    parsed = parse_prefix(cells[index]) if cells is not None else None
    return Prefix(*parsed) if parsed else None


def chunk_ids_at(cells, index: int) -> tuple[int, ...]:
    """Row ``index``'s prefix chunk ids (empty: it shares nothing), what a prefix-reading
    router is bound to (:meth:`~driftsched.sim.router.PrefixAffinity.bind`)."""
    prefix = prefix_at(cells, index)
    return prefix.chunk_ids if prefix else ()


def cache_stats(pools) -> dict:
    """Tokens looked up and hit at admission over ``pools`` (vLLM's prefix-cache queries and
    hits), and the hit rate."""
    query = sum(p.query_tokens for p in pools)
    hit = sum(p.hit_tokens for p in pools)
    return {
        "query_tokens": int(query),
        "hit_tokens": int(hit),
        "hit_rate": float(hit / query) if query else 0.0,
    }


#: the key of the (empty) sequence before a request's first block
ROOT = 0


class PrefixCache:
    """The block pool with prefix caching: a free queue in LRU order, keys of cached blocks,
    reference counts. The counting interface of :class:`~driftsched.sim.kvcache.BlockPool`
    (``capacity``, ``free``, ``used``, ``take``) is kept for the drivers and the dispatcher.

    Requests carry ``blocks`` (their labels, in position order), ``cached_blocks`` (how many of
    them are registered), ``keys`` (memo of their block keys) and ``prefix``."""

    def __init__(self, num_gpu_blocks: int, block_size: int):
        if num_gpu_blocks < 2:
            raise ValueError("need at least 2 KV blocks (one is the null block)")
        self.capacity = num_gpu_blocks - 1
        self.block_size = block_size
        self._queue: OrderedDict[int, None] = OrderedDict.fromkeys(range(1, num_gpu_blocks))
        self._key: list[int | None] = [None] * num_gpu_blocks
        self._ref = [0] * num_gpu_blocks
        self._cached: dict[int, dict[int, None]] = {}  # key -> labels (insertion order)
        self._stash: list[int] = []  # taken by decoders of a fast-forwarded run, not yet synced
        #: tokens looked up and tokens hit, over admissions (vLLM's prefix-cache queries/hits)
        self.query_tokens = 0
        self.hit_tokens = 0

    # -- the counting interface ------------------------------------------------------------
    @property
    def free(self) -> int:
        return len(self._queue)

    @property
    def used(self) -> int:
        return self.capacity - len(self._queue)

    @property
    def cached_blocks(self) -> int:
        """Blocks whose key is cached (in use or free)."""
        return sum(len(v) for v in self._cached.values())

    def take(self, n: int) -> bool:
        """Pop ``n`` blocks for decoders whose counters run ahead (the fast engine), to be
        handed out by :meth:`sync`; False (and nothing taken) if fewer are free."""
        if n > len(self._queue):
            return False
        self._pop_into(self._stash, n)
        return True

    # -- blocks of one request -------------------------------------------------------------
    def _pop_into(self, out: list[int], n: int) -> None:
        """Pop ``n`` blocks from the free queue's head onto ``out``, in order; a popped block
        that still carries a key is evicted from the cache as it is reused."""
        popitem, key_of, cached, ref = self._queue.popitem, self._key, self._cached, self._ref
        for _ in range(n):
            label, _ = popitem(last=False)
            key = key_of[label]
            if key is not None:
                labels = cached[key]
                del labels[label]
                if not labels:
                    del cached[key]
                key_of[label] = None
            ref[label] = 1
            out.append(label)

    def key(self, req, j: int) -> int:
        """The key of block ``j`` of ``req`` (memoised on the request)."""
        return self.keys(req, j + 1)[j]

    def keys(self, req, n: int) -> list[int]:
        """``req``'s memo of block keys, holding at least its first ``n``: block ``i``'s key
        chains its parent's with the prefix chunk ids it lies wholly inside, or with the
        request's own id once a block is past them (then every later block is its own too)."""
        keys = req.keys
        if keys is None:
            keys = req.keys = []
        i = len(keys)
        if i >= n:
            return keys
        size, prefix, index = self.block_size, req.prefix, req.index
        parent = keys[-1] if keys else ROOT
        if prefix is not None:
            c, ids = prefix.chunk_tokens, prefix.chunk_ids
            shared_end = min(req.prompt_tokens, len(ids) * c)  # both bounds: fixed per request
            while i < n and (i + 1) * size <= shared_end:
                end = (i + 1) * size
                parent = hash((parent, *ids[i * size // c : (end - 1) // c + 1]))
                keys.append(parent)
                i += 1
        while i < n:
            parent = hash((parent, -1, index))
            keys.append(parent)
            i += 1
        return keys

    def lookup(self, req) -> list[int]:
        """The labels of ``req``'s cache hit: its longest run of cached leading blocks, at
        most ``(num_tokens - 1) // block_size`` (the request has nothing computed)."""
        out = []
        cached, key = self._cached, self.key
        for j in range((req.num_tokens - 1) // self.block_size):
            labels = cached.get(key(req, j))
            if not labels:
                break
            out.append(next(iter(labels)))
        return out

    def evictable(self, labels: list[int]) -> int:
        """How many of ``labels`` are free (touching them takes them out of the free queue)."""
        ref = self._ref
        return sum(1 for b in labels if ref[b] == 0)

    def touch(self, req, labels: list[int]) -> None:
        """``req`` adopts the hit blocks ``labels`` (its first blocks; already registered)."""
        ref, queue = self._ref, self._queue
        for b in labels:
            if ref[b] == 0:
                del queue[b]
            ref[b] += 1
        req.blocks = list(labels)
        req.cached_blocks = len(labels)

    def grow(self, req, blocks: int) -> None:
        """Give ``req`` fresh blocks from the free queue's head up to ``blocks`` (the caller
        checked that they are free)."""
        if req.blocks is None:
            req.blocks = []
        if len(req.blocks) < blocks:
            self._pop_into(req.blocks, blocks - len(req.blocks))

    def sync(self, req, blocks: int) -> None:
        """Give ``req`` blocks from the stash (taken for it by :meth:`take`) up to ``blocks``,
        and register the blocks its computed tokens fill."""
        if req.blocks is None:
            req.blocks = []
        own, stash = req.blocks, self._stash
        while len(own) < blocks:
            own.append(stash.pop())
        self.register(req, req.num_computed_tokens)

    def register(self, req, tokens: int) -> None:
        """Register every block of ``req`` that its first ``tokens`` tokens fill."""
        full = min(tokens // self.block_size, len(req.blocks))
        first = req.cached_blocks
        if first >= full:
            return
        key_of, cached = self._key, self._cached
        keys, blocks = self.keys(req, full), req.blocks
        for j in range(first, full):
            label, key = blocks[j], keys[j]
            key_of[label] = key
            labels = cached.get(key)
            if labels is None:
                cached[key] = {label: None}
            else:
                labels[label] = None
        req.cached_blocks = full

    def release(self, req) -> None:
        """Free ``req``'s blocks, tail first: those no other request holds join the free
        queue's tail, keeping their keys (cached until reused)."""
        ref, queue = self._ref, self._queue
        if req.blocks:
            for b in reversed(req.blocks):
                ref[b] -= 1
                if ref[b] == 0:
                    queue[b] = None
        req.blocks = []
        req.cached_blocks = 0

    def freed_by(self, req) -> int:
        """Blocks :meth:`release` would return to the free queue (those only ``req`` holds)."""
        ref = self._ref
        return sum(1 for b in req.blocks or () if ref[b] == 1)
