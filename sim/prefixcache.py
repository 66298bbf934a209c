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

from array import array
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


class FreeQueue:
    """The free blocks in eviction order (vLLM's ``FreeKVCacheBlockQueue``, a doubly linked
    list there): taken from the head, appended at the tail, removed from anywhere (a cache hit
    on a free block) — each O(1), amortised.

    An append-only list with lazy deletion: ``_at[label]`` is the absolute position of the
    label's live entry (-1: the label is not free); an entry whose position no longer matches
    is skipped when it reaches the head. The consumed head is cut off as the list grows, and
    the list is rebuilt from its live entries when skipped entries make up most of it."""

    def __init__(self, labels: range):
        self._entries = list(labels)
        self._head = 0  # index in _entries of the next entry to look at
        self._base = 0  # absolute position of _entries[0]
        self._at = array("q", [-1]) * labels.stop
        for i, label in enumerate(labels):
            self._at[label] = i
        self.size = len(self._entries)  # live entries: the free blocks

    def append(self, label: int) -> None:
        """``label`` becomes free: the newest entry (evicted last)."""
        if len(self._entries) - self._head > 2 * self.size + 64:
            self._rebuild()
        entries = self._entries
        self._at[label] = self._base + len(entries)
        entries.append(label)
        self.size += 1

    def remove(self, label: int) -> None:
        """``label`` (free) is no longer free; its entry is left to be skipped."""
        self._at[label] = -1
        self.size -= 1

    def pop_into(self, out: list[int], n: int) -> None:
        """Take the ``n`` oldest free labels onto ``out``, oldest first (``n <= size``)."""
        entries, at = self._entries, self._at
        head, base = self._head, self._base
        for _ in range(n):
            label = entries[head]
            while at[label] != base + head:  # a removed or re-appended label's old entry
                head += 1
                label = entries[head]
            at[label] = -1
            head += 1
            out.append(label)
        self.size -= n
        if head > 1024 and 2 * head > len(entries):
            del entries[:head]
            self._base = base + head
            head = 0
        self._head = head

    def _rebuild(self) -> None:
        """Keep only the live entries, in order."""
        at, start = self._at, self._base + self._head
        live = [
            label for i, label in enumerate(self._entries[self._head :], start) if at[label] == i
        ]
        base = self._base + len(self._entries)  # past every position handed out so far
        for i, label in enumerate(live, base):
            at[label] = i
        self._entries, self._base, self._head = live, base, 0


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
        self._queue = FreeQueue(range(1, num_gpu_blocks))
        self._key: list[int | None] = [None] * num_gpu_blocks
        self._ref = array("q", [0]) * num_gpu_blocks
        # cached blocks by key, oldest registration first: vLLM's hash -> {block id: block}
        # map, kept as the first label and, for a key two blocks share (computed twice before
        # either was cached), the later ones in order — most keys have one block, no dict
        self._first: dict[int, int] = {}
        self._more: dict[int, dict[int, None]] = {}
        self._stash: list[int] = []  # taken by decoders of a fast-forwarded run, not yet synced
        #: tokens looked up and tokens hit, over admissions (vLLM's prefix-cache queries/hits)
        self.query_tokens = 0
        self.hit_tokens = 0

    # -- the counting interface ------------------------------------------------------------
    @property
    def free(self) -> int:
        return self._queue.size

    @property
    def used(self) -> int:
        return self.capacity - self._queue.size

    @property
    def cached_blocks(self) -> int:
        """Blocks whose key is cached (in use or free)."""
        return len(self._first) + sum(len(v) for v in self._more.values())

    def take(self, n: int) -> bool:
        """Pop ``n`` blocks for decoders whose counters run ahead (the fast engine), to be
        handed out by :meth:`sync`; False (and nothing taken) if fewer are free."""
        if n > self._queue.size:
            return False
        self._pop_into(self._stash, n)
        return True

    # -- blocks of one request -------------------------------------------------------------
    def _pop_into(self, out: list[int], n: int) -> None:
        """Pop ``n`` blocks from the free queue's head onto ``out``, in order; a popped block
        that still carries a key is evicted from the cache as it is reused."""
        start = len(out)
        self._queue.pop_into(out, n)
        key_of, ref = self._key, self._ref
        for i in range(start, start + n):
            label = out[i]
            key = key_of[label]
            if key is not None:
                self._uncache(key, label)
                key_of[label] = None
            ref[label] = 1

    def _uncache(self, key: int, label: int) -> None:
        """``label`` no longer holds ``key`` (it is being reused)."""
        first, more = self._first, self._more
        later = more.get(key)
        if first[key] == label:
            if later is None:
                del first[key]
                return
            first[key] = next(iter(later))  # the next oldest takes its place
            label = first[key]
        del later[label]
        if not later:
            del more[key]

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
        first = self._first
        for j in range((req.num_tokens - 1) // self.block_size):
            label = first.get(self.key(req, j), 0)  # 0, the null block, is never cached
            if not label:
                break
            out.append(label)
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
                queue.remove(b)
            ref[b] += 1
        req.blocks = list(labels)
        req.cached_blocks = len(labels)

    def grow(self, req, blocks: int) -> None:
        """Give ``req`` fresh blocks from the free queue's head up to ``blocks`` (the caller
        checked that they are free)."""
        if req.blocks is None:
            req.blocks = []
        own = req.blocks
        if len(own) < blocks:
            self._pop_into(own, blocks - len(own))

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
        key_of, oldest = self._key, self._first
        keys, blocks = self.keys(req, full), req.blocks
        for j in range(first, full):
            label, key = blocks[j], keys[j]
            key_of[label] = key
            if oldest.setdefault(key, label) != label:
                self._more.setdefault(key, {})[label] = None
        req.cached_blocks = full

    def release(self, req) -> None:
        """Free ``req``'s blocks, tail first: those no other request holds join the free
        queue's tail, keeping their keys (cached until reused)."""
        ref, queue, blocks = self._ref, self._queue, req.blocks
        if blocks:
            for b in reversed(blocks):
                ref[b] -= 1
                if ref[b] == 0:
                    queue.append(b)
        req.blocks = []
        req.cached_blocks = 0

    def freed_by(self, req) -> int:
        """Blocks :meth:`release` would return to the free queue (those only ``req`` holds)."""
        ref = self._ref
        return sum(1 for b in req.blocks or () if ref[b] == 1)
