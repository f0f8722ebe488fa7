"""Where one search step's time goes: torch.profiler over a step (after a warm-up step), operators by self time.

    python -m benchmarks.profile_step SEARCHER SPACE PRESET [key=value ...]

e.g. ``python -m benchmarks.profile_step darts1 cnn small channels_last=false``.
"""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from .bench_search_step import build


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    searcher, space, preset = argv[:3]
    sets = dict(item.split("=", 1) for item in argv[3:])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    s, (train, val) = build(searcher, space, preset, device, **sets)
    s.step(train, val)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        s.step(train, val)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=15))


if __name__ == "__main__":
    main(sys.argv[1:])
