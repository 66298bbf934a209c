"""The profiling plan: which request mixes to run so the measured steps cover what the simulator
will ask about — prefill-only steps across chunk sizes (and chunks with context), decode-only
steps across batch sizes and context lengths, and mixed steps.

A *point* is a small scripted workload (requests submitted at once, optionally more injected
after a few steps); running it once is an *episode*. The plan repeats every point and shuffles
the episodes with a seeded generator, so slow drift of the machine's speed spreads over all
points instead of biasing one dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Point:
    label: str
    kind: str  # prefill | decode | mixed
    requests: tuple[tuple[int, int], ...]  # (prompt_tokens, output_tokens) at the start
    inject_after_steps: int = 0
    inject: tuple[tuple[int, int], ...] = ()


def points(
    max_model_len: int,
    max_num_seqs: int,
    budget: int,
    quick: bool = False,
    max_prefill_tokens: int = 24_576,
) -> list[Point]:
    """The plan's points for an engine with these limits (``quick``: a small subset for CI)."""
    out: list[Point] = []
    sizes = [16, 48, 128, 256, 384, 512, 768, budget, int(budget * 1.4), max_model_len - 48]
    for p in sorted({min(s, max_model_len - 2) for s in sizes}):
        out.append(Point(f"prefill-{p}", "prefill", ((p, 1),)))
    for k in (2, 4, 8):
        out.append(Point(f"prefill-{k}x96", "prefill", ((96, 1),) * k))
    batches = [b for b in (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256) if b <= max_num_seqs]
    contexts = [32, 256, 1024, max_model_len - 148]
    for b in batches:
        for ctx in contexts:
            if b * ctx <= max_prefill_tokens or b == 1:
                out.append(Point(f"decode-{b}x{ctx}", "decode", ((ctx, 24),) * b))
    for b in [x for x in (4, 16, 48, 128) if x <= max_num_seqs - 1]:
        for p in (64, 512, budget):
            out.append(
                Point(
                    f"mixed-{b}+{p}",
                    "mixed",
                    ((128, 40),) * b,
                    inject_after_steps=4,
                    inject=((p, 1),),
                )
            )
    if quick:
        keep = {
            "prefill-48",
            "prefill-256",
            "prefill-512",
            f"prefill-{budget}",
            "prefill-4x96",
            "decode-1x32",
            "decode-4x256",
            "decode-8x1024",
            "decode-16x32",
            "decode-16x256",
            "decode-16x1024",
            "decode-32x256",
            f"decode-{batches[-1]}x32",
            "mixed-4+512",
            "mixed-16+64",
            "mixed-16+512",
        }
        out = [p for p in out if p.label in keep]
    return out


def episodes(pts: list[Point], repeats: int, seed: int) -> list[tuple[int, Point]]:
    """``(repeat, point)`` pairs, every point ``repeats`` times, in a seeded random order."""
    order = [(r, p) for r in range(repeats) for p in pts]
    perm = np.random.default_rng(seed).permutation(len(order))
    return [order[i] for i in perm]
