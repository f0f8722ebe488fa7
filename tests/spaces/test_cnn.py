import copy

import pytest
import torch
import torch.nn.functional as F

from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import edge_index
from nasbench.searchers.mixers import AuxSkipMixer, EdgeNormalizedMixer, grouped_softmax
from nasbench.spaces.base import SupernetOptions
from nasbench.spaces.cnn import PUBLISHED, CnnConfig, CnnSpace, CnnSupernet
from nasbench.spaces.cnn_cells import MixedOp, SearchCell, SharedPools, scaled_batch_norm
from nasbench.spaces.cnn_network import CnnNetwork
from nasbench.spaces.mixing import CellMix, Mixer, channel_shuffle
from nasbench.spaces.ops import CNN_OP_NAMES, FactorizedReduce


def small_supernet(**options):
    torch.manual_seed(0)
    return CnnSupernet(CnnConfig(channels=4, layers=3, nodes=2), 10, SupernetOptions(**options))


def derive(net):
    return net.derive(net.mixer.strengths(net))


def test_supernet_shape_and_parameters():
    net = CnnSupernet(CnnConfig(), 10, SupernetOptions())
    names = [n for n, _ in net.named_arch_parameters()]
    assert names == ["alpha_normal", "alpha_reduce"]
    assert net.alpha_normal.shape == (14, 8)
    assert set(names) <= set(net.state_dict())  # architecture parameters are saved with the weights
    assert sum(p.numel() for p in net.weight_parameters()) + 2 * 14 * 8 == sum(p.numel() for p in net.parameters())
    assert [i for i, c in enumerate(net.cells) if c.reduction] == [2, 5]  # 1/3 and 2/3 of 8 cells
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_cell_is_the_softmax_mixture_of_its_ops_with_each_edge_pooling_its_own_input():
    """Recompute a reduction cell edge by edge and op by op, the pooling ops with torch's functional ops and
    a fresh batch norm per edge (as the reference code builds them), `none` as an explicit zero, and compare
    with the cell, which pools once per node."""
    torch.manual_seed(0)
    cell = SearchCell(nodes=3, c_pp=4, c_p=4, c=4, reduction=True, reduction_prev=False, partial=1)
    s0, s1 = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    weights = torch.softmax(torch.randn(len(cell.pairs), len(CNN_OP_NAMES)), -1).requires_grad_()
    out = cell(torch.relu(s0), torch.relu(s1), CellMix(weights))  # the network hands a cell its inputs' ReLU
    states = [cell.pre0(torch.relu(s0)), cell.pre1(torch.relu(s1))]
    for dst in range(2, 5):
        node = torch.zeros(())
        for src in range(dst):
            row = cell.pairs.index((src, dst))
            edge, x, w = cell.edges[row], states[src], weights[row]
            for name, op, relu in zip(edge.names, edge.ops, edge.relu_input):
                node = node + w[CNN_OP_NAMES.index(name)] * op(torch.relu(x) if relu else x)
            pooled = {
                "max_pool_3x3": F.max_pool2d(x, 3, edge.stride, 1),
                "avg_pool_3x3": F.avg_pool2d(x, 3, edge.stride, 1, count_include_pad=False),
            }
            for name, y in pooled.items():
                node = node + w[CNN_OP_NAMES.index(name)] * F.batch_norm(y, None, None, training=True)
            node = node + w[CNN_OP_NAMES.index("none")] * torch.zeros_like(y)
        states.append(node)
    expected = torch.cat(states[2:], dim=1)
    assert torch.allclose(out, expected, atol=1e-5)
    probe = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * probe).sum(), weights)
    (want,) = torch.autograd.grad((expected * probe).sum(), weights)
    assert torch.allclose(grad, want, atol=1e-5) and grad.abs().max() > 0
    assert all("none" not in edge.names and len(edge.ops) == 5 for edge in cell.edges)
    assert len(cell.pools) == 4  # the two inputs and the first two of three nodes have outgoing edges


@pytest.mark.parametrize("training", [True, False])
def test_scaled_batch_norm_is_the_scale_times_the_batch_norm(training):
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3, affine=False)
    bn.running_mean.uniform_(-1, 1)  # eval mode reads these
    bn.running_var.uniform_(0.5, 2)
    ref = copy.deepcopy(bn)
    bn.train(training), ref.train(training)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    scale = torch.tensor(0.7, requires_grad=True)
    got, want = scaled_batch_norm(bn, x, scale), scale * ref(x)
    assert torch.allclose(got, want, atol=1e-6)
    probe = torch.randn_like(got)
    grads = torch.autograd.grad((got * probe).sum(), (x, scale))
    ref_grads = torch.autograd.grad((want * probe).sum(), (x, scale))
    assert all(torch.allclose(g, r, atol=1e-5) for g, r in zip(grads, ref_grads))
    for name, buffer in ref.named_buffers():
        assert torch.equal(getattr(bn, name), buffer), name


def test_alpha_of_none_still_gets_its_gradient():
    net = small_supernet()
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    none_col = CNN_OP_NAMES.index("none")
    assert net.alpha_normal.grad[:, none_col].abs().sum() > 0  # through the softmax, as in the paper


def test_partial_channels_mix_a_quarter_and_shuffle():
    """With skip_connect alone on every edge of a normal cell, each edge passes its source whole (the mixed
    quarter through the op, the rest bypassing it) and shuffled: node = shuffle(sum of its sources)."""
    torch.manual_seed(0)
    cell = SearchCell(nodes=2, c_pp=8, c_p=8, c=8, reduction=False, reduction_prev=False, partial=4)
    norms = [m for edge in cell.edges for m in edge.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert cell.channels.mixed == 2 and norms and all(bn.num_features == 2 for bn in norms)  # ops on a quarter
    r0, r1 = torch.randn(1, 8, 4, 4).relu(), torch.randn(1, 8, 4, 4).relu()
    w = torch.zeros(len(cell.pairs), len(CNN_OP_NAMES))
    w[:, CNN_OP_NAMES.index("skip_connect")] = 1.0
    out = cell(r0, r1, CellMix(w))
    s0, s1 = cell.pre0(r0), cell.pre1(r1)
    node2 = channel_shuffle(s0 + s1, 4)
    node3 = channel_shuffle(s0 + s1 + node2, 4)
    assert torch.allclose(out, torch.cat([node2, node3], dim=1), atol=1e-6)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_edge_softmax_normalises_per_node():
    beta = torch.tensor([1.0, 2.0, 0.0, 0.0, 5.0])  # node 2: edges 0-1, node 3: edges 2-4
    w = grouped_softmax(beta, [d for _, d in edge_index(2, 2)])
    assert torch.allclose(w[:2].sum(), torch.tensor(1.0)) and torch.allclose(w[2:].sum(), torch.tensor(1.0))
    assert torch.allclose(w[:2], torch.softmax(beta[:2], 0))


def test_edge_normalization_changes_the_ranking():
    net = small_supernet(mixer=EdgeNormalizedMixer())
    with torch.no_grad():
        net.alpha_normal.zero_()
        net.alpha_normal[:, CNN_OP_NAMES.index("sep_conv_3x3")] = 1.0  # all edges equally strong
        net.beta_normal.copy_(torch.tensor([0.0, 0.0, 3.0, 0.0, 2.0]))  # node 3 prefers sources 0 and 2
    srcs = [(e.src, e.dst) for e in derive(net).cell("normal")]
    assert srcs == [(0, 2), (1, 2), (0, 3), (2, 3)]


def test_partial_channels_must_divide_the_width():
    with pytest.raises(UserError, match="multiple of 2K"):
        CnnSupernet(CnnConfig(channels=6, layers=3), 10, SupernetOptions(partial_channels=4))


def test_derived_genotype_has_two_edges_per_node():
    g = derive(small_supernet())
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


def test_the_cell_is_pc_darts_per_edge_mixture_scaled_by_each_edge_weight():
    """PC-DARTS computes each edge as shuffle(concat(ops on the first C/K channels, the rest max-pooled on a
    stride-2 edge)) and scales it by its edge weight; the cell scales the op weights and the bypassed
    channels instead and concatenates and shuffles once per node. Both must give the same values and
    gradients."""
    torch.manual_seed(0)
    cell = SearchCell(nodes=2, c_pp=8, c_p=8, c=8, reduction=True, reduction_prev=False, partial=4)
    s0, s1 = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8)
    weights = torch.softmax(torch.randn(len(cell.pairs), len(CNN_OP_NAMES)), -1).requires_grad_()
    beta = torch.randn(len(cell.pairs), requires_grad=True)
    edge_weights = grouped_softmax(beta, [d for _, d in cell.pairs])
    out = cell(torch.relu(s0), torch.relu(s1), CellMix(weights, edge_scale=edge_weights))
    states = [cell.pre0(torch.relu(s0)), cell.pre1(torch.relu(s1))]
    for dst in (2, 3):
        node = torch.zeros(())
        for src in range(dst):
            row = cell.pairs.index((src, dst))
            x = states[src]
            part, rest = x[:, :2], x[:, 2:]
            mixed = cell.edges[row](part, torch.relu(part), cell.pools[src](part), weights[row], None, None)
            if src < 2:  # the reduction cell's stride-2 edges
                rest = F.max_pool2d(rest, 2, 2)
            node = node + edge_weights[row] * channel_shuffle(torch.cat([mixed, rest], dim=1), 4)
        states.append(node)
    expected = torch.cat(states[2:], dim=1)
    assert torch.allclose(out, expected, atol=1e-5)
    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum(), (weights, beta), retain_graph=True)
    wants = torch.autograd.grad((expected * probe).sum(), (weights, beta))
    assert all(torch.allclose(g, w, atol=1e-5) and g.abs().max() > 0 for g, w in zip(grads, wants))


def test_the_auxiliary_skip_is_the_identity_or_a_reduction_of_its_own():
    """DARTS-' auxiliary skip: beta * x on a stride-1 edge; on a stride-2 edge beta times a FactorizedReduce
    that is not the skip op's, recomputed here from its convolutions and a batch norm by hand."""
    torch.manual_seed(0)
    edges = {s: MixedOp(4, s, aux_skip=True) for s in (1, 2)}
    x = torch.randn(2, 4, 8, 8)
    w = torch.softmax(torch.randn(len(CNN_OP_NAMES)), -1)
    for stride, edge in edges.items():
        pooled = SharedPools(4, stride)(x)
        plain = edge(x, x.relu(), pooled, w, None, None)
        with_aux = edge(x, x.relu(), pooled, w, None, None, aux_skip=0.3)
        if stride == 1:
            expected = 0.3 * x
        else:
            r = edge.aux_reduce
            y = torch.cat(
                [
                    F.conv2d(x.relu(), r.conv_a.weight, stride=2),
                    F.conv2d(x.relu()[:, :, 1:, 1:], r.conv_b.weight, stride=2),
                ],
                1,
            )
            mean, var = y.mean((0, 2, 3), keepdim=True), y.var((0, 2, 3), unbiased=False, keepdim=True)
            expected = 0.3 * (y - mean) / torch.sqrt(var + 1e-5)
            assert r is not edge.ops[edge.names.index("skip_connect")]
        assert torch.allclose(with_aux - plain, expected, atol=1e-6)
    net = small_supernet(aux_skip=True, mixer=AuxSkipMixer(Mixer(), 0.5))
    extra = {n for n, _ in net.named_parameters()} - {n for n, _ in small_supernet().named_parameters()}
    strided = sum(c.reduction for c in net.cells) * 2 * 2  # per reduction cell: 2 nodes x 2 input edges
    assert len(extra) == 2 * strided and all(".aux_reduce.conv_" in n for n in extra)
    net.loss((torch.randn(2, 3, 32, 32), torch.tensor([1, 2]))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in net.named_parameters() if n in extra)


def test_the_auxiliary_skip_exists_where_the_op_set_has_no_skip():
    torch.manual_seed(0)
    cfg = CnnConfig(channels=4, layers=3, nodes=2, op_set="s4")  # noise against sep_conv_3x3: no skip op
    net = CnnSupernet(cfg, 10, SupernetOptions(aux_skip=True, mixer=AuxSkipMixer(Mixer(), 0.0)))
    batch = (torch.randn(2, 3, 32, 32), torch.tensor([1, 2]))
    net.eval()
    without = net.loss(batch)
    net.mixer = AuxSkipMixer(Mixer(), 1.0)
    assert not torch.allclose(net.loss(batch), without)


def test_a_supernet_built_without_the_auxiliary_skip_refuses_one():
    net = small_supernet(mixer=AuxSkipMixer(Mixer(), 0.5))
    with pytest.raises(ValueError, match="aux_skip=True"):
        net(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("channels", [4, 8])
def test_factorized_reduce_is_two_offset_strided_convolutions_in_either_memory_format(channels):
    """Checked against F.conv2d with stride 2 on NCHW tensors, values and gradients; at 4 channels in
    channels-last the layer takes its indexed path (oneDNN's strided 1x1 input gradient corrupts the heap
    there on AVX2 CPUs, which would end this process)."""
    torch.manual_seed(0)
    layer = FactorizedReduce(channels, 4, affine=False)
    x = torch.randn(8, channels, 16, 16)  # a shape that crashed there
    probe = torch.randn(8, 4, 8, 8)
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    out = layer(x_cl)
    (grad_x, grad_w) = torch.autograd.grad((out * probe).sum(), (x_cl, layer.conv_a.weight))
    x_ref = x.clone().requires_grad_()
    a = F.conv2d(x_ref, layer.conv_a.weight, stride=2)
    b = F.conv2d(x_ref[:, :, 1:, 1:], layer.conv_b.weight, stride=2)
    y = torch.cat([a, b], 1)
    expected = (y - y.mean((0, 2, 3), keepdim=True)) / torch.sqrt(y.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    want_x, want_w = torch.autograd.grad((expected * probe).sum(), (x_ref, layer.conv_a.weight))
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(grad_x, want_x, atol=1e-5) and torch.allclose(grad_w, want_w, atol=1e-5)
