"""Step-time ratios measured side by side: several search-step variants built in one process and timed in
interleaved rounds after a warm-up step each, reported as medians and as ratios to the first variant.

    python -m benchmarks.interleave_steps SPACE PRESET ROUNDS VARIANT [VARIANT ...]

A variant is ``SEARCHER[:key=value,key=value]``, e.g.
``python -m benchmarks.interleave_steps cnn small 5 darts1 darts2 darts2:hvp=forward``.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from .bench_search_step import build
from .conftest import sync


def parse(variant: str) -> tuple[str, dict[str, str]]:
    searcher, _, sets = variant.partition(":")
    return searcher, dict(item.split("=", 1) for item in sets.split(",") if item)


def main(argv: list[str]) -> None:
    if len(argv) < 4:
        raise SystemExit(__doc__)
    space, preset, rounds, variants = argv[0], argv[1], int(argv[2]), argv[3:]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    built = []
    for variant in variants:
        searcher, sets = parse(variant)
        s, (train, val) = build(searcher, space, preset, device, **sets)
        s.step(train, val)  # warm-up
        built.append((variant, s, train, val))
    times: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant, s, train, val in built:
            sync(device)
            start = time.perf_counter()
            s.step(train, val)
            sync(device)
            times[variant].append(time.perf_counter() - start)
    base = statistics.median(times[variants[0]])
    print(f"{space} {preset}, {rounds} interleaved rounds, {torch.get_num_threads()} threads, {device}:")
    for variant in variants:
        median = statistics.median(times[variant])
        print(f"  {variant:32s} median {median:.3f} s   x{median / base:.2f} of {variants[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
