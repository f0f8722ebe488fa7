"""The effect of one setting on a search, against the spread between seeds (docs/fidelity.md).

    python benchmarks/fidelity_setting_effect.py nb201 darts1 small w_nesterov false true --seeds 0,1 --out DIR

Runs SEARCHER on SPACE at PRESET on the built-in data once per seed and per VALUE of SETTING (``--set
SETTING=VALUE``), each run in its own folder under DIR (a run that is there already is resumed or read, so
an interrupted measurement continues). Then prints, per seed, each setting's final search metric, true
accuracy where the space knows it, and derived genotype; each value's mean and standard deviation of those
over the seeds; and the mean absolute difference of the final architecture weights between the two
values at equal seed, beside the same difference between two seeds at equal value. A setting whose first
number is well below the second moves the search less than the seed does at this budget. One thread per
run, so that it can run beside other work.
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from nasbench.runner import run
from nasbench.testing import preset_config

SCORES = ("val_acc", "val_ppl", "true_test_acc")  # the search's own metric, and the true one where known


def final_weights(record) -> np.ndarray:  # noqa: ANN001
    """The last epoch's architecture weights, every cell type's rows one after another."""
    weights = record.epochs[-1]["arch_weights"]
    return np.concatenate([np.asarray(weights[cell], dtype=float).ravel() for cell in sorted(weights)])


def mean_gap(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return float(np.mean([np.abs(a - b).mean() for a, b in pairs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("searcher")
    parser.add_argument("preset")
    parser.add_argument("setting")
    parser.add_argument("values", nargs=2)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    records = {}
    for seed in seeds:
        for value in args.values:
            cfg = preset_config(args.searcher, args.space, args.preset, seed, **{args.setting: value})
            folder = args.out / f"{args.searcher}-{args.space}-{args.preset}-{args.setting}={value}-seed{seed}"
            records[seed, value] = run(cfg, folder, resume="auto", progress=False, echo=lambda _: None)
    print(f"{args.searcher} on {args.space} at preset {args.preset}: {args.setting} = {' vs '.join(args.values)}")
    for seed in seeds:
        for value in args.values:
            m = records[seed, value].metrics
            scores = ", ".join(f"{k} {m[k]:.4g}" for k in SCORES if k in m)
            print(f"  seed {seed}, {args.setting}={value}: {scores}; {records[seed, value].genotype}")
        same = records[seed, args.values[0]].genotype == records[seed, args.values[1]].genotype
        print(f"  seed {seed}: the two genotypes are {'the same' if same else 'different'}")
    for value in args.values:
        for key in SCORES:
            got = [records[seed, value].metrics[key] for seed in seeds if key in records[seed, value].metrics]
            if got:
                spread = f"sd {np.std(got, ddof=1):.3g}" if len(got) > 1 else "one seed"
                print(f"  {args.setting}={value}: {key} mean {np.mean(got):.4g}, {spread} over {len(got)} seeds")
    weights = {key: final_weights(r) for key, r in records.items()}
    between_values = mean_gap([(weights[s, args.values[0]], weights[s, args.values[1]]) for s in seeds])
    between_seeds = mean_gap([(weights[a, v], weights[b, v]) for v in args.values for a, b in combinations(seeds, 2)])
    print(f"  mean |difference| of the final architecture weights: {between_values:.3g} between the two values")
    print(f"  at equal seed, {between_seeds:.3g} between seeds at equal value")


if __name__ == "__main__":
    main()
