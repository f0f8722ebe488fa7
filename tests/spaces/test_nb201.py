import csv
import itertools
import statistics

import pytest
import torch
import torch.nn.functional as F

from nasbench.cli import main
from nasbench.data.nb201_table import BUILTIN_TABLE, lookup, table
from nasbench.errors import UserError
from nasbench.genotype import Edge
from nasbench.results import RunRecord
from nasbench.searchers.mixers import EdgeNormalizedMixer, PathMixer
from nasbench.spaces.base import SupernetOptions
from nasbench.spaces.mixing import CellMix
from nasbench.spaces.nb201 import (
    PAIRS,
    MixedEdge,
    Nb201Config,
    Nb201Space,
    Nb201Supernet,
    SearchCell,
    cell_genotype,
    derive_argmax,
    format_nb201,
    parse_nb201,
)
from nasbench.spaces.nb201_network import NB201_OPS, DiscreteCell, Nb201Network, ResidualReduction

ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
# One of the two best CIFAR-10 cells of the table (94.37 %; the other swaps the ops of 3<-1 and 3<-2)
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def one_hot(ops_per_edge: list[str]) -> torch.Tensor:
    """[6, 5] mixing weights selecting one op per edge (PAIRS order)."""
    w = torch.zeros(len(PAIRS), len(NB201_OPS))
    for row, op in enumerate(ops_per_edge):
        w[row, NB201_OPS.index(op)] = 1.0
    return w


def test_supernet_shapes_and_parameters():
    torch.manual_seed(0)
    net = Nb201Supernet(Nb201Config(), 10, SupernetOptions())
    assert [n for n, _ in net.named_arch_parameters()] == ["alpha_cell"]
    assert net.alpha_cell.shape == (6, 5) and "alpha_cell" in net.state_dict()
    kinds = [type(layer).__name__ for layer in net.body.layers]
    stage = ["SearchCell"] * 5
    assert kinds == stage + ["ResidualReduction"] + stage + ["ResidualReduction"] + stage
    assert net.body.classifier.in_features == 64  # 16 -> 32 -> 64 channels
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_cells_keep_the_shape_and_reductions_halve_it():
    x = torch.randn(2, 4, 8, 8)
    assert SearchCell(4, 1)(x, CellMix(torch.softmax(torch.randn(6, 5), -1))).shape == x.shape
    assert DiscreteCell(parse_nb201(BEST), 4)(x).shape == x.shape
    assert ResidualReduction(4, 8)(x).shape == (2, 8, 4, 4)


def test_all_skip_cell_is_four_times_its_input():
    """Hand-worked: node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x."""
    x = torch.randn(2, 3, 5, 5)
    assert torch.allclose(DiscreteCell(parse_nb201(ALL_SKIP), 3)(x), 4 * x)
    assert torch.allclose(SearchCell(3, 1)(x, CellMix(one_hot(["skip_connect"] * 6))), 4 * x)


def test_one_hot_supernet_cell_equals_the_discrete_cell():
    """With one-hot weights the mixture is that cell: none, skip and average pooling (no parameters)."""
    ops = ["avg_pool_3x3", "skip_connect", "none", "none", "avg_pool_3x3", "skip_connect"]
    genotype = cell_genotype([Edge(op, src, dst) for op, (src, dst) in zip(ops, PAIRS)])
    x = torch.randn(2, 3, 6, 6)
    node1 = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)  # 1<-0 avg_pool_3x3
    node2 = x  # 2<-0 skip_connect, 2<-1 none
    node3 = F.avg_pool2d(node1, 3, 1, 1, count_include_pad=False) + node2  # 3<-0 none, 3<-1 pool, 3<-2 skip
    assert torch.allclose(DiscreteCell(genotype, 3)(x), node3, atol=1e-6)
    assert torch.allclose(SearchCell(3, 1)(x, CellMix(one_hot(ops))), node3, atol=1e-6)


def test_mixed_edge_is_the_weighted_sum_of_its_ops():
    torch.manual_seed(0)
    edge = MixedEdge(4, 1).eval()
    x = torch.randn(2, 4, 6, 6)
    w = torch.softmax(torch.randn(5), 0)
    expected = torch.zeros_like(x)  # none contributes zeros
    for name, op in zip(NB201_OPS[1:], edge.ops):
        expected += w[NB201_OPS.index(name)] * op(x)
    assert torch.allclose(edge(x, w, None), expected, atol=1e-6)
    conv3 = edge.ops[NB201_OPS.index("nor_conv_3x3") - 1]
    assert isinstance(conv3[0], torch.nn.ReLU) and conv3[1].kernel_size == (3, 3)  # ReLU-conv-BN


def test_partial_channels_and_edge_normalisation():
    torch.manual_seed(0)
    net = Nb201Supernet(Nb201Config(channels=4, cells_per_stage=1), 10, SupernetOptions(2, EdgeNormalizedMixer()))
    assert [n for n, _ in net.named_arch_parameters()] == ["alpha_cell", "beta_cell"]
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    with torch.no_grad():
        net.alpha_cell.copy_(torch.log(one_hot(["nor_conv_1x1", "none", "avg_pool_3x3"] + ["skip_connect"] * 3)))
        net.beta_cell.copy_(torch.tensor([0.0, 5.0, -5.0, 1.0, 2.0, 3.0]))
    assert format_nb201(net.derive(net.mixer.strengths(net))) == (
        "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    with pytest.raises(UserError, match="partial_channels"):
        Nb201Supernet(Nb201Config(channels=6), 10, SupernetOptions(partial_channels=4))


@pytest.mark.parametrize(
    "partial,text",
    [
        (1, "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"),
        (2, "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|skip_connect~2|"),
    ],
)
def test_single_path_equals_the_one_hot_mixture(partial, text):
    torch.manual_seed(0)
    net = Nb201Supernet(Nb201Config(channels=4, cells_per_stage=1), 10, SupernetOptions(partial)).eval()
    genotype = parse_nb201(text)
    x = torch.randn(2, 3, 8, 8)
    with net.mixed_by(PathMixer(net, genotype)):
        path_logits = net(x)
        path_logits.sum().backward()
    assert net.alpha_cell.grad is None  # the architecture parameters are not used on a path
    with torch.no_grad():
        net.alpha_cell.copy_(torch.log(one_hot([e.op for e in genotype.cell("cell")])))
    assert torch.allclose(net(x), path_logits, atol=1e-5)


def test_single_path_of_a_cut_cell_gives_zeros_and_bad_paths_are_refused():
    net = Nb201Supernet(Nb201Config(channels=4, cells_per_stage=1), 10, SupernetOptions())
    x = torch.randn(2, 4, 8, 8)
    cut = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    cell = net.body.layers[0]
    assert torch.equal(cell(x, CellMix(None, active=[(0,)] * 6)), torch.zeros_like(x))  # none everywhere
    with net.mixed_by(PathMixer(net, parse_nb201(cut))):
        assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(UserError, match="not edges of this supernet"):
        PathMixer(net, cell_genotype([Edge("skip_connect", 0, 5)]))


def test_derive_is_the_argmax_per_edge_including_none():
    alpha = torch.tensor(
        [
            [0.9, 0.1, 0.0, 0.0, 0.0],  # 1<-0: none wins
            [0.0, 0.0, 0.0, 0.2, 0.1],  # 2<-0: nor_conv_3x3
            [0.0, 0.3, 0.0, 0.0, 0.0],  # 2<-1: skip_connect
            [0.0, 0.0, 0.5, 0.0, 0.0],  # 3<-0: nor_conv_1x1
            [0.0, 0.0, 0.0, 0.0, 0.4],  # 3<-1: avg_pool_3x3
            [2.0, 1.9, 0.0, 0.0, 0.0],  # 3<-2: none again
        ]
    )
    expected = "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|"
    assert format_nb201(cell_genotype(derive_argmax(alpha))) == expected
    assert derive_argmax(torch.softmax(alpha, -1)) == derive_argmax(alpha)
    with pytest.raises(ValueError):
        derive_argmax(torch.zeros(6, 4))


def test_every_table_string_parses_and_formats_back():
    strings = list(table())
    assert len(strings) == 5**6
    for text in strings:
        assert format_nb201(parse_nb201(text)) == text
    # the table is exactly the space: every assignment of five ops to six edges
    every = {
        format_nb201(cell_genotype([Edge(op, src, dst) for op, (src, dst) in zip(ops, PAIRS)]))
        for ops in itertools.product(NB201_OPS, repeat=6)
    }
    assert every == set(strings)


@pytest.mark.parametrize(
    "text",
    [
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|",  # two nodes
        "|skip_connect~0|+|skip_connect~1|skip_connect~0|+|none~0|none~1|none~2|",  # sources out of order
        "|sep_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # an op of the DARTS space
        "skip_connect~0+|none~0|none~1|+|none~0|none~1|none~2|",  # no bars
        "|none~0|+|none~0|+|none~0|none~1|none~2|",  # node 2 with one edge
    ],
)
def test_bad_genotype_text_is_a_user_error(text):
    with pytest.raises(UserError, match="genotype"):
        parse_nb201(text)


def test_look_ups_agree_with_the_published_figures():
    """Figures from the data set's README (Dong and Yang 2020, NATS-Bench export)."""
    assert lookup(BEST)["cifar10"] == pytest.approx(94.37, abs=0.005)
    assert lookup(ALL_SKIP)["cifar10"] == pytest.approx(54.30, abs=0.005)
    cifar10 = {arch: accs["cifar10"] for arch, accs in table().items()}
    assert max(cifar10.values()) == lookup(BEST)["cifar10"]
    assert statistics.median(cifar10.values()) == pytest.approx(90.75, abs=0.006)  # 90.745 in the table
    with pytest.raises(UserError, match="not in the NAS-Bench-201 table"):
        lookup("|none~0|")


def test_builtin_table_equals_the_shared_one(shared_data):
    with (shared_data / "nats-tss" / "nats_tss_200ep.csv").open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == len(table(BUILTIN_TABLE))
    for c10, c100, imagenet, arch, _ in rows[::97]:
        assert lookup(arch) == {"cifar10": float(c10), "cifar100": float(c100), "imagenet16_120": float(imagenet)}


def test_space_ground_truth_and_sampling():
    space = Nb201Space()
    truth = space.ground_truth(space.parse_genotype(BEST))
    assert set(truth) == {"true_test_acc", "true_test_acc_cifar100", "true_test_acc_imagenet16_120"}
    assert truth["true_test_acc"] == lookup(BEST)["cifar10"]
    g = torch.Generator().manual_seed(0)
    samples = [space.format_genotype(space.sample_genotype(Nb201Config(), g)) for _ in range(200)]
    assert all(s in table() for s in samples) and len(set(samples)) > 190
    counts = {op: sum(s.count(op + "~") for s in samples) for op in NB201_OPS}
    assert all(180 < n < 300 for n in counts.values())  # 1,200 edges over 5 ops: 240 each expected


def test_discrete_network_trains_through_the_network_contract():
    torch.manual_seed(0)
    net = Nb201Network(parse_nb201(BEST), 4, 1, 10)
    batch = (torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]))
    loss = net.loss(batch)
    loss.backward()
    assert loss.item() > 0 and net.body.stem[0].weight.grad is not None
    scores = net.evaluate(batch)
    assert int(scores["count"]) == 4 and 0 <= int(scores["correct"]) <= 4


def test_run_records_the_true_accuracy_of_each_epoch(tmp_path, capsys):
    args = ["run", "--searcher", "darts1", "--space", "nb201", "--preset", "tiny", "--quiet", "--out", str(tmp_path)]
    assert main(args) == 0
    (run_dir,) = list((tmp_path / "nb201").iterdir())
    record = RunRecord.load(run_dir / "record.json")
    assert record.status == "completed" and len(record.epochs) == 2
    for epoch in record.epochs:
        expected = lookup(epoch["genotype"])
        assert epoch["true_test_acc"] == expected["cifar10"]
        assert epoch["true_test_acc_cifar100"] == expected["cifar100"]
        assert epoch["true_test_acc_imagenet16_120"] == expected["imagenet16_120"]
    assert record.metrics["true_test_acc"] == lookup(record.genotype)["cifar10"]
    assert "true_test_acc" in capsys.readouterr().out
