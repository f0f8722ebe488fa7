"""RobustDARTS' reduced spaces S1-S4 as op sets of the cnn space: their ops, masks, the noise op, a search."""

import pytest
import torch

from nasbench.registry import SEARCHERS, SPACES
from nasbench.searchers.mixers import DirichletMixer
from nasbench.spaces.base import SupernetOptions
from nasbench.spaces.cnn import CnnConfig, CnnSupernet
from nasbench.spaces.cnn_op_sets import S1, UNIFORM
from nasbench.spaces.ops import CNN_OPS, Noise
from tests.conftest import tiny_config


def supernet(op_set: str, **options) -> CnnSupernet:
    torch.manual_seed(0)
    return CnnSupernet(CnnConfig(channels=4, layers=3, nodes=4, op_set=op_set), 10, SupernetOptions(**options))


@pytest.mark.parametrize("op_set", ["s2", "s3", "s4"])
def test_uniform_op_sets_mix_only_their_ops(op_set):
    net = supernet(op_set)
    assert set(net.cell_specs["normal"].ops) == set(UNIFORM[op_set]) and net.alpha_normal.shape == (
        14,
        len(UNIFORM[op_set]),
    )
    for cell in net.cells:
        for edge in cell.edges:
            assert set(edge.names) | set(edge.pool_names) == set(UNIFORM[op_set]) - {"none"}
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_s1_masks_every_edges_two_ops_and_derives_from_them_only():
    net = supernet("s1")
    for cell_name in ("normal", "reduce"):
        spec = net.cell_specs[cell_name]
        weights = torch.softmax(net.alpha(cell_name), -1)
        for row, pair in enumerate(S1[cell_name]):
            allowed = {spec.ops.index(op) for op in pair}
            assert all((weights[row, c] > 0) == (c in allowed) for c in range(len(spec.ops)))
            assert torch.allclose(weights[row].sum(), torch.tensor(1.0))
    for cell in net.cells:
        table = S1["reduce" if cell.reduction else "normal"]
        assert [set(e.names) | set(e.pool_names) for e in cell.edges] == [set(pair) for pair in table]
    genotype = net.derive(net.mixer.strengths(net))
    for cell_name in ("normal", "reduce"):
        rows = {pair: r for r, pair in enumerate(net.cell_specs[cell_name].pairs)}
        assert all(e.op in S1[cell_name][rows[(e.src, e.dst)]] for e in genotype.cell(cell_name))


def test_s1_is_refused_on_a_cell_of_another_size():
    with pytest.raises(Exception, match="4 nodes"):
        CnnSupernet(CnnConfig(channels=4, layers=3, nodes=2, op_set="s1"), 10, SupernetOptions())
    with pytest.raises(Exception, match="op_set"):
        tiny_config("darts1", "cnn", op_set="s9")


def test_the_noise_op_ignores_its_input():
    torch.manual_seed(0)
    x = torch.randn(8, 4, 16, 16, requires_grad=True)
    a, b = Noise(1)(x), Noise(1)(x * 100)
    assert a.shape == x.shape and Noise(2)(x).shape == (8, 4, 8, 8)
    assert abs(float(a.mean())) < 0.05 and abs(float(a.std()) - 1) < 0.05 and not torch.allclose(a, b)
    assert not a.requires_grad and "noise" in CNN_OPS


def test_dirichlet_samples_respect_the_mask():
    net = supernet("s1", mixer=DirichletMixer())
    w = net.mixing("normal").weights
    spec = net.cell_specs["normal"]
    for row, pair in enumerate(S1["normal"]):
        allowed = {spec.ops.index(op) for op in pair}
        assert all((w[row, c] > 0) == (c in allowed) for c in range(len(spec.ops)))
    assert torch.allclose(w.sum(-1), torch.ones(14))


@pytest.mark.parametrize("op_set", ["s1", "s3", "s4"])
def test_a_search_step_runs_on_the_reduced_spaces(op_set):
    cfg = tiny_config("darts1", "cnn", op_set=op_set, nodes="4")
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, torch.device("cpu"), 0)
    s = SEARCHERS.get("darts1")(space, cfg, data, torch.device("cpu"))
    stats = s.step(next(data.train.epoch(0)), next(data.val.epoch(0)))
    assert all(torch.isfinite(v) for v in stats.values())
    genotype = s.derive()
    assert space.parse_genotype(space.format_genotype(genotype)) == genotype
