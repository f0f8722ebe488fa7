"""The eigenvalue measurement's start and tolerance along a short search, against a converged eigenvalue.

    python -m benchmarks.eigenvalue_variants SPACE PRESET ROUNDS STEPS [SEARCHER]

Each round takes STEPS search steps (default searcher darts1), then measures the dominant Hessian
eigenvalue on the run's fixed architecture-split batch three ways: a random start at ``hessian_tol``
1e-3 (the default), and from the previous round's Ritz vector at 1e-2 and 3e-2, all capped at 10
products, and once to convergence (40 products, tol 1e-6). It prints, per round and variant, the
products used, the seconds, the seconds in median search steps of that round, and the relative error.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch

from nasbench.metrics.collapse import supernet_hessian_eigenvalue

from .bench_search_step import build

VARIANTS = (
    ("random start, tol 1e-3", 1e-3, False),
    ("warm start, tol 1e-2", 1e-2, True),
    ("warm start, tol 3e-2", 3e-2, True),
)


def endless(stream: Any) -> Iterator[Any]:
    """A stream's batches, epoch after epoch."""
    for epoch in itertools.count():
        yield from stream.epoch(epoch)


def main(argv: list[str]) -> None:
    if len(argv) < 4:
        raise SystemExit(__doc__)
    space, preset, rounds, steps = argv[0], argv[1], int(argv[2]), int(argv[3])
    searcher = argv[4] if len(argv) > 4 else "darts1"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    s, _ = build(searcher, space, preset, device)
    assert s.model is not None, f"{searcher} has no supernet to measure"
    data = s.data
    batches = list(itertools.islice(data.score.epoch(0), 1))
    train, val = endless(data.train), endless(data.val)
    starts: dict[str, torch.Tensor | None] = {name: None for name, _, _ in VARIANTS}
    for r in range(rounds):
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            s.step(next(train), next(val))
            times.append(time.perf_counter() - t)
        step_s = statistics.median(times)
        exact, _ = supernet_hessian_eigenvalue(s.model, batches, iters=40, tol=1e-6)
        print(f"round {r + 1}: step {step_s:.2f} s, converged eigenvalue {exact['hessian_eig']:.5g}")
        for name, tol, warm in VARIANTS:
            got, vector = supernet_hessian_eigenvalue(s.model, batches, iters=10, tol=tol, start=starts[name])
            starts[name] = vector if warm else None
            error = abs(got["hessian_eig"] - exact["hessian_eig"]) / abs(exact["hessian_eig"])
            seconds = got["hessian_seconds"]
            print(
                f"  {name:24s} {got['hessian_hvps']:2d} products  {seconds:6.2f} s  {seconds / step_s:5.1f} steps"
                f"  error {100 * error:.3f} %"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
