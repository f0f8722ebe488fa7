"""The effect of darts2's ``virtual_clip`` rule on the architecture gradient (docs/fidelity.md).

    python benchmarks/fidelity_darts2_clip.py rnn small 3

Builds darts2 on SPACE at PRESET on the built-in data, takes WARM search steps, then from that one state
computes the architecture gradient under each rule and prints how far apart they are.
"""

from __future__ import annotations

import copy
import sys
from itertools import islice

import torch

from nasbench.searchers.hypergradient import global_norm
from nasbench.searchers.second_order import VIRTUAL_CLIPS
from nasbench.testing import build


def main(space_name: str, preset: str, warm: int) -> None:
    torch.set_num_threads(1)
    _, data, s = build("darts2", space_name, preset=preset)
    cfg = s.cfg
    s.start_epoch(0)
    pairs = zip(data.train.epoch(0), data.val.epoch(0))
    for train, val in islice(pairs, warm):
        s.step(train, val)
    train, val = next(pairs)
    state = copy.deepcopy((s.model.state_dict(), s.w_opt.state_dict(), s.model.carried_state(), torch.get_rng_state()))

    def restore() -> None:
        s.model.load_state_dict(state[0])
        s.w_opt.load_state_dict(state[1])
        s.model.restore_state(state[2])
        torch.set_rng_state(state[3])

    with s.model.frozen_state():
        raw = torch.autograd.grad(s.model.loss(train), s.weights, allow_unused=True, materialize_grads=True)
    grads = {}
    for rule in VIRTUAL_CLIPS:
        restore()
        s.clip_rule = lambda rule=rule: rule  # type: ignore[method-assign]
        s.a_opt.zero_grad(set_to_none=True)
        s.arch_gradient(train, val)
        grads[rule] = torch.cat([a.grad.flatten() for a in s.alphas])

    def rel(a: str, b: str) -> float:
        return float((grads[a] - grads[b]).norm() / grads[b].norm())

    print(
        f"darts2 on {space_name} ({preset}) after {warm} steps: training-gradient norm {float(global_norm(raw)):.3f}"
        f" (clip {cfg.train.grad_clip}); |step - off| / |off| = {rel('step', 'off'):.3g}; "
        f"|step+v - step| / |step| = {rel('step+v', 'step'):.3g}"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
