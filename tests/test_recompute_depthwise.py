"""``train.recompute_depthwise``: the same search, bit for bit, with the depthwise outputs recomputed, not kept."""

import pytest
import torch

from nasbench.spaces.depthwise_conv import DepthwiseConv2d
from nasbench.spaces.separable_conv import ConvChain
from nasbench.testing import build, steps
from tests.test_checkpoint_cells import saved_bytes


@pytest.mark.parametrize("searcher", ["darts1", "pcdarts", "darts2", "randomws"])
def test_steps_are_bit_for_bit_those_that_keep_the_outputs(searcher):
    runs = {}
    for on in ("true", "false"):
        _, data, s = build(searcher, "cnn", recompute_depthwise=on)  # seeded: the same draws both ways
        net = s.model if s.model is not None else s.supernet
        chains = [m for m in net.modules() if isinstance(m, ConvChain)]
        assert chains and all(m.recompute == (on == "true") for m in chains)
        runs[on] = ([v for stats in steps(s, data, 0, 2) for v in stats.values()], net.state_dict())
    (losses, state), (plain_losses, plain_state) = runs["true"], runs["false"]
    assert losses == plain_losses
    for name, value in plain_state.items():  # weights, alpha, and batch-norm statistics
        assert torch.equal(state[name], value), name


def test_the_supernet_keeps_all_but_the_depthwise_outputs():
    """What autograd keeps for a weight pass, with the outputs recomputed, is what it keeps without, less
    exactly the depthwise convolutions' outputs (which the plain path keeps as the 1x1 convolutions' inputs)."""
    _, data, fused = build("darts1", "cnn")
    _, _, plain = build("darts1", "cnn", recompute_depthwise="false")
    batch = next(data.train.epoch(0))
    outputs = []
    for m in plain.model.modules():
        if isinstance(m, DepthwiseConv2d):
            m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel() * out.element_size()))
    loss, kept = saved_bytes(lambda: fused.model.loss(batch))
    plain_loss, plain_kept = saved_bytes(lambda: plain.model.loss(batch))
    assert torch.equal(loss, plain_loss)
    assert outputs and plain_kept - kept == sum(outputs)
