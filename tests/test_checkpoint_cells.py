"""``train.checkpoint_cells``: the same search with fewer activations kept, and refused where it would be wrong."""

import pytest
import torch

from nasbench.errors import UserError
from nasbench.metrics.collapse import supernet_hessian_eigenvalue
from nasbench.testing import build, steps


def saved_bytes(fn):
    """Bytes of the tensors autograd keeps for the backward pass of ``fn()`` (outside checkpointed regions)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total


def two_steps(searcher, space, **sets):
    """The losses of a freshly built searcher's first two steps, and its supernet after them."""
    _, data, s = build(searcher, space, **sets)  # seeded: the same draws with and without the setting
    return [v for stats in steps(s, data, 0, 2) for v in stats.values()], s.model


@pytest.mark.parametrize(
    "searcher,space", [("darts1", "cnn"), ("darts1", "nb201"), ("pcdarts", "cnn"), ("gdas", "nb201")]
)
def test_checkpointed_steps_match_plain_ones(searcher, space):
    losses, checkpointed = two_steps(searcher, space, checkpoint_cells="true")
    plain_losses, plain = two_steps(searcher, space)
    assert checkpointed.checkpoint_cells and not plain.checkpoint_cells
    assert losses == pytest.approx(plain_losses, rel=1e-5)
    ours = checkpointed.state_dict()
    for name, value in plain.state_dict().items():  # weights, alpha, and batch-norm statistics moved once a pass
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("space", ["cnn", "nb201"])
def test_checkpointed_supernet_keeps_fewer_activations(space):
    _, data, plain = build("darts1", space)
    _, _, checkpointed = build("darts1", space, checkpoint_cells="true")
    batch = next(data.train.epoch(0))
    loss_plain, kept_plain = saved_bytes(lambda: plain.model.loss(batch))
    loss_ckpt, kept_ckpt = saved_bytes(lambda: checkpointed.model.loss(batch))
    assert loss_ckpt.item() == pytest.approx(loss_plain.item(), rel=1e-6)
    assert kept_ckpt < 0.25 * kept_plain


def test_checkpointed_hessian_eigenvalue_matches():
    _, data, plain = build("darts1", "nb201")
    _, _, checkpointed = build("darts1", "nb201", checkpoint_cells="true")
    batches = [next(data.score.epoch(0))]
    ours, _ = supernet_hessian_eigenvalue(checkpointed.model, batches, iters=5)
    theirs, _ = supernet_hessian_eigenvalue(plain.model, batches, iters=5)
    assert ours["hessian_eig"] == pytest.approx(theirs["hessian_eig"], rel=1e-4)


def test_second_order_darts_refuses_checkpointing():
    with pytest.raises(UserError, match="checkpoint_cells=true does not combine with darts2"):
        build("darts2", "nb201", checkpoint_cells="true")


def test_the_recurrent_space_refuses_checkpointing():
    with pytest.raises(UserError, match="rnn supernet runs its cell once per time step"):
        build("darts1", "rnn", checkpoint_cells="true")
