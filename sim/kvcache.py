"""KV-cache block accounting, as vLLM V1's block pool does it (no prefix caching).

Capacity is ``num_gpu_blocks``; one block is vLLM's reserved *null block*, so
``num_gpu_blocks - 1`` are allocatable. A request holding ``t`` tokens of KV needs
``ceil(t / block_size)`` blocks; an allocation that does not fit fails as a whole.
"""

from __future__ import annotations


def blocks_for(tokens: int, block_size: int) -> int:
    """Blocks needed to hold ``tokens`` tokens of KV."""
    return -(-tokens // block_size)


class BlockPool:
    """Free-block counter. Invariant: ``0 <= free <= capacity``."""

    def __init__(self, num_gpu_blocks: int):
        if num_gpu_blocks < 2:
            raise ValueError("need at least 2 KV blocks (one is the null block)")
        self.capacity = num_gpu_blocks - 1
        self.free = self.capacity

    @property
    def used(self) -> int:
        return self.capacity - self.free

    def take(self, n: int) -> bool:
        """Allocate ``n`` blocks if that many are free; return whether it happened."""
        if n > self.free:
            return False
        self.free -= n
        return True

    def give(self, n: int) -> None:
        """Return ``n`` blocks."""
        self.free += n
        assert self.free <= self.capacity, "freed more KV blocks than were allocated"
