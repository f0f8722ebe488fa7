"""The effect of randomws' ``train_all_ops`` on the selection's scores (docs/fidelity.md).

    python benchmarks/fidelity_randomws_stats.py cnn small 80 100

Builds randomws twice on SPACE at PRESET on the built-in data, both from seed 0: one trains every op with
0/1 weights (Li & Talwalkar's code), the other the sampled path alone, on the same batches and paths, for
STEPS weight steps. The two settings move the weights alike (``tests/searchers/test_randomws.py``), but
rounding differences grow quickly over many steps, so after each step the second supernet takes the
first one's weights: what is left between them is only the batch norms' running statistics, each as its
setting tracks them. Then it scores CANDIDATES genotypes, drawn as the selection draws them, with each
supernet on the same architecture-split batches (eval mode, as the selection scores them), and prints how
far the two rankings agree, and the median seconds per step of each (interleaved in one process).
"""

from __future__ import annotations

import sys
import time
from itertools import islice

import numpy as np
import torch
from scipy.stats import spearmanr

from nasbench.searchers.random import GenotypeSampler
from nasbench.testing import build


def follow_weights(follower, leader) -> None:  # noqa: ANN001
    """``follower`` takes ``leader``'s weights and optimiser state; its buffers stay its own."""
    with torch.no_grad():
        for mine, theirs in zip(follower.weights, leader.weights):
            mine.copy_(theirs)
    follower.w_opt.load_state_dict(leader.w_opt.state_dict())


def main(space_name: str, preset: str, steps: int, candidates: int) -> None:
    torch.set_num_threads(1)
    built = {all_ops: build("randomws", space_name, preset=preset, train_all_ops=all_ops) for all_ops in (False, True)}
    runs = {all_ops: searcher for all_ops, (_, _, searcher) in built.items()}
    space, data, path_only = built[False]
    cfg = path_only.cfg
    seconds: dict[bool, list[float]] = {False: [], True: []}
    per_epoch = cfg.train.steps_per_epoch or len(data.train)
    done, epoch = 0, 0
    while done < steps:
        for searcher in runs.values():
            searcher.start_epoch(epoch)
        for batch in islice(data.train.epoch(epoch), min(per_epoch, steps - done)):
            for all_ops in (True, False):  # interleaved, same batch and path
                start = time.perf_counter()
                runs[all_ops].step(batch, None)
                seconds[all_ops].append(time.perf_counter() - start)
            follow_weights(runs[False], runs[True])
            done += 1
        epoch += 1

    sampler = GenotypeSampler(space, cfg.space_cfg, 1, path_only.sampler.ops)
    genotypes = [sampler.sample() for _ in range(candidates)]
    batches = list(islice(data.score.epoch(0), cfg.searcher_cfg.candidate_batches))
    scores = {
        all_ops: np.array([s.shared_score(g, batches)["val_acc"] for g in genotypes]) for all_ops, s in runs.items()
    }
    rho = spearmanr(scores[False], scores[True]).statistic
    best = {all_ops: int(np.argmax(s)) for all_ops, s in scores.items()}
    top10 = [set(np.argsort(-s)[:10].tolist()) for s in scores.values()]
    step_s = {all_ops: float(np.median(s[1:])) for all_ops, s in seconds.items()}
    print(
        f"randomws on {space_name} ({preset}), {steps} steps, {candidates} candidates on "
        f"{len(batches)} batches, the same weights: val_acc mean {scores[True].mean():.2f} % "
        f"(every op) against {scores[False].mean():.2f} % (path alone); Spearman rho {rho:.3f}; "
        f"the same best candidate: {best[False] == best[True]}; top-10 overlap {len(top10[0] & top10[1])}/10; "
        f"median s/step every op {step_s[True]:.3f}, path {step_s[False]:.3f} "
        f"(ratio {step_s[True] / step_s[False]:.2f})"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
