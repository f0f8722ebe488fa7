import pytest
import torch

from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import edge_index
from nasbench.spaces.base import SupernetOptions
from nasbench.spaces.cnn import PUBLISHED, CnnConfig, CnnSpace, CnnSupernet, MixedOp
from nasbench.spaces.cnn_network import CnnNetwork
from nasbench.spaces.mixing import channel_shuffle, edge_softmax
from nasbench.spaces.ops import CNN_OP_NAMES


def small_supernet(**options):
    torch.manual_seed(0)
    return CnnSupernet(CnnConfig(channels=4, layers=3, nodes=2), 10, SupernetOptions(**options))


def test_supernet_shape_and_parameters():
    net = CnnSupernet(CnnConfig(), 10, SupernetOptions())
    names = [n for n, _ in net.named_arch_parameters()]
    assert names == ["alpha_normal", "alpha_reduce"]
    assert net.alpha_normal.shape == (14, 8)
    assert set(names) <= set(net.state_dict())  # architecture parameters are saved with the weights
    assert sum(p.numel() for p in net.weight_parameters()) + 2 * 14 * 8 == sum(p.numel() for p in net.parameters())
    assert [i for i, c in enumerate(net.cells) if c.reduction] == [2, 5]  # 1/3 and 2/3 of 8 cells
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_supernet_is_the_softmax_mixture_of_its_ops():
    """Recompute one edge's output op by op, with `none` as an explicit zero, and compare."""
    torch.manual_seed(0)
    mixed = MixedOp(4, stride=1, partial=1).eval()
    x = torch.randn(2, 4, 8, 8)
    w = torch.softmax(torch.randn(len(CNN_OP_NAMES)), 0)
    expected = torch.zeros_like(x)
    for name, op, relu in zip(mixed.names, mixed.ops, mixed.relu_input):
        expected += w[CNN_OP_NAMES.index(name)] * op(torch.relu(x) if relu else x)
    assert torch.allclose(mixed(x, torch.relu(x), w), expected, atol=1e-6)
    assert "none" not in mixed.names and len(mixed.ops) == 7


def test_alpha_of_none_still_gets_its_gradient():
    net = small_supernet()
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    none_col = CNN_OP_NAMES.index("none")
    assert net.alpha_normal.grad[:, none_col].abs().sum() > 0  # through the softmax, as in the paper


def test_partial_channels_mix_a_quarter_and_shuffle():
    torch.manual_seed(0)
    mixed = MixedOp(8, stride=1, partial=4)
    assert mixed.mixed_channels == 2
    x = torch.randn(1, 8, 4, 4)
    w = torch.zeros(len(CNN_OP_NAMES))
    w[CNN_OP_NAMES.index("skip_connect")] = 1.0  # identity on the mixed part: output is a shuffle of x
    out = mixed(x, torch.relu(x), w)
    assert torch.equal(out, channel_shuffle(x, 4))


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_edge_softmax_normalises_per_node():
    beta = torch.tensor([1.0, 2.0, 0.0, 0.0, 5.0])  # node 2: edges 0-1, node 3: edges 2-4
    w = edge_softmax(beta, n_inputs=2, n_nodes=2)
    assert torch.allclose(w[:2].sum(), torch.tensor(1.0)) and torch.allclose(w[2:].sum(), torch.tensor(1.0))
    assert torch.allclose(w[:2], torch.softmax(beta[:2], 0))


def test_edge_normalization_changes_the_ranking():
    net = small_supernet(edge_normalization=True)
    with torch.no_grad():
        net.alpha_normal.zero_()
        net.alpha_normal[:, CNN_OP_NAMES.index("sep_conv_3x3")] = 1.0  # all edges equally strong
        net.beta_normal.copy_(torch.tensor([0.0, 0.0, 3.0, 0.0, 2.0]))  # node 3 prefers sources 0 and 2
    srcs = [(e.src, e.dst) for e in net.derive().cell("normal")]
    assert srcs == [(0, 2), (1, 2), (0, 3), (2, 3)]


def test_partial_channels_must_divide_the_width():
    with pytest.raises(UserError, match="multiple of 2K"):
        CnnSupernet(CnnConfig(channels=6, layers=3), 10, SupernetOptions(partial_channels=4))


def test_derived_genotype_has_two_edges_per_node():
    g = small_supernet().derive()
    for cell in ("normal", "reduce"):
        edges = g.cell(cell)
        assert len(edges) == 4 and all(e.op != "none" for e in edges)
        assert [e.dst for e in edges] == [2, 2, 3, 3]


def test_darts_v2_evaluation_network_has_the_published_size():
    # Liu et al. 2019, table 1: DARTS (second order) 3.3M parameters at 20 cells, 36 channels
    net = CnnNetwork(PUBLISHED["DARTS_V2"], channels=36, layers=20, num_classes=10, auxiliary=True)
    params = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("auxiliary"))
    assert round(params / 1e6, 1) == 3.3
    net.eval()
    logits, aux = net(torch.randn(1, 3, 32, 32))
    assert logits.shape == (1, 10) and aux is None


def test_sampled_genotypes_are_valid_and_vary():
    space, cfg = CnnSpace(), CnnConfig()
    gen = torch.Generator().manual_seed(0)
    samples = [space.sample_genotype(cfg, gen) for _ in range(20)]
    for g in samples:
        for cell in ("normal", "reduce"):
            edges = g.cell(cell)
            assert all(e.op != "none" and e.src < e.dst for e in edges)
            for dst in range(2, 6):
                assert len({e.src for e in edges if e.dst == dst}) == 2
    assert len({space.format_genotype(g) for g in samples}) == 20
    data = SearchData("", "", None, None, None, {"num_classes": 10})  # type: ignore[arg-type]
    net = space.network(samples[0], CnnConfig(channels=4, layers=3), data)
    assert net(torch.randn(2, 3, 32, 32))[0].shape == (2, 10)
    assert len(edge_index(2, 4)) == 14


def test_discrete_network_loss_adds_the_weighted_auxiliary_loss():
    torch.manual_seed(0)
    net = CnnNetwork(PUBLISHED["DARTS_V1"], channels=4, layers=3, num_classes=10, auxiliary=True)
    images, labels = torch.randn(3, 3, 32, 32), torch.tensor([1, 2, 3])
    torch.manual_seed(1)
    loss = net.loss((images, labels))
    torch.manual_seed(1)
    logits, aux = net(images)
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(loss, ce(logits, labels) + 0.4 * ce(aux, labels))
    net.eval()
    scores = net.evaluate((images, labels))
    assert int(scores["count"]) == 3 and 0 <= int(scores["correct"]) <= 3
