"""Passes that differentiate one side only (alpha or the weights) keep the other side out of the graph,
and the search comes out bit for bit as it does with every parameter in the graph."""

import contextlib

import pytest
import torch

from nasbench.spaces.base import Supernet
from nasbench.testing import build, steps
from tests.conftest import saved_bytes


def test_each_pass_of_a_darts1_step_differentiates_one_side_only():
    _, data, s = build("darts1", "cnn")
    model = s.model
    seen = []

    def record(module, args):
        seen.append((any(w.requires_grad for w in model.weight_parameters()), all(a.requires_grad for a in s.alphas)))

    handle = model.register_forward_pre_hook(record)
    try:
        steps(s, data, 0, 1)
    finally:
        handle.remove()
    # the architecture pass (alpha alone), then the weight pass (weights alone)
    assert seen == [(False, True), (True, False)]
    assert all(p.requires_grad for p in model.parameters())


def test_a_pass_for_alpha_keeps_less_for_its_backward():
    _, data, s = build("darts1", "cnn")
    batch = next(data.val.epoch(0))
    everything = saved_bytes(lambda: s.model.loss(batch))
    with s.model.differentiating(s.alphas):
        alpha_only = saved_bytes(lambda: s.model.loss(batch))
    assert alpha_only < 0.9 * everything  # the convolutions' inputs, kept only for their weights' gradients


def test_the_parameters_require_grad_again_after_an_error():
    _, _, s = build("darts1", "cnn")
    with pytest.raises(RuntimeError), s.model.differentiating(s.alphas):
        assert not any(w.requires_grad for w in s.weights)
        raise RuntimeError("inside")
    assert all(p.requires_grad for p in s.model.parameters())


@pytest.mark.parametrize("space", ["cnn", "nb201", "rnn"])
@pytest.mark.parametrize("searcher", ["darts1", "darts2", "sdarts-adv"])
def test_the_search_is_bit_for_bit_the_same_as_with_every_parameter_in_the_graph(searcher, space, monkeypatch):
    _, data, lean = build(searcher, space, seed=3)
    steps(lean, data, 0, 2)
    monkeypatch.setattr(Supernet, "differentiating", lambda self, params: contextlib.nullcontext())
    _, data, full = build(searcher, space, seed=3)
    steps(full, data, 0, 2)
    for (name, a), b in zip(lean.model.state_dict().items(), full.model.state_dict().values()):
        assert torch.equal(a, b), f"{searcher} on {space}: {name} differs"
