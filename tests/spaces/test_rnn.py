import pytest
import torch
from torch import nn

from nasbench.bounds import check_bounds
from nasbench.data.ptb import TextBatch
from nasbench.errors import UserError
from nasbench.genotype import Edge, Genotype
from nasbench.searchers.base import batch_lr
from nasbench.searchers.mixers import EdgeNormalizedMixer, PathMixer
from nasbench.spaces.base import SupernetOptions
from nasbench.spaces.mixing import CellMix
from nasbench.spaces.rnn import PUBLISHED, RNN_OP_NAMES, RnnConfig, RnnSpace, RnnSupernet, SearchCell
from nasbench.spaces.rnn_network import GenotypeCell, Regime, RnnNetwork, evaluation_network
from tests.conftest import tiny_config

VOCAB = 11
TINY = RnnConfig(units=4, nodes=3, bptt=4)
CHAIN = Genotype.of(  # a 3-node cell: relu from node 0, tanh from node 1, identity from node 0
    {"recurrent": [Edge("relu", 0, 1), Edge("tanh", 1, 2), Edge("identity", 0, 3)]}, {"recurrent": [1, 2, 3]}
)


def window(tokens: torch.Tensor, split: str = "train", first: bool = False, lr_scale: float = 1.0) -> TextBatch:
    # tokens: [T + 1, B] -> a window of T inputs and their next tokens
    return TextBatch(tokens[:-1], tokens[1:], split, first, lr_scale, regularize=True)


def tokens(t: int, b: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(VOCAB, (t, b), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("net", ["supernet", "network"])
def test_hidden_state_carries_over_between_windows_and_is_detached(net):
    torch.manual_seed(0)
    model = RnnSupernet(TINY, VOCAB, SupernetOptions()) if net == "supernet" else RnnNetwork(CHAIN, VOCAB, 4, Regime())
    with torch.no_grad():  # weights of order 1, so that the state matters from one window to the next
        for p in model.weight_parameters() if net == "supernet" else model.parameters():
            p.mul_(25)
    model.eval()  # deterministic: no dropout, batch norm on running statistics
    text = tokens(9)
    whole = model.evaluate(window(text, "score", first=True))["loss_sum"]
    end_whole = model.hidden["score"]
    parts = model.evaluate(window(text[:5], "score", first=True))["loss_sum"]
    parts = parts + model.evaluate(window(text[4:], "score"))["loss_sum"]
    assert torch.allclose(whole, parts, atol=1e-4) and torch.allclose(model.hidden["score"], end_whole, atol=1e-5)
    restarted = model.evaluate(window(text[:5], "score", first=True))["loss_sum"]
    restarted = restarted + model.evaluate(window(text[4:], "score", first=True))["loss_sum"]
    assert not torch.allclose(whole, restarted, atol=1e-4)

    model.train()
    model.loss(window(text[:5])).backward()
    carried = model.hidden["train"]
    assert carried.shape == (3, 4) and carried.grad_fn is None and not carried.requires_grad
    assert "score" in model.hidden and not torch.equal(model.hidden["score"], carried)  # one state per split
    model.loss(window(text[4:])).backward()  # would fail if the graph reached back into the first window


def test_frozen_state_leaves_the_carried_state_alone():
    torch.manual_seed(0)
    model = RnnSupernet(TINY, VOCAB, SupernetOptions())
    model.loss(window(tokens(5), first=True))
    before = model.hidden["train"].clone()
    with model.frozen_state():
        model.loss(window(tokens(5, seed=1)))
        model.loss(window(tokens(5, seed=2), split="val", first=True))
        assert not torch.equal(model.hidden["train"], before)
    assert torch.equal(model.hidden["train"], before) and "val" not in model.hidden


@pytest.mark.parametrize("partial,edge_norm", [(1, False), (2, True)])
def test_search_cell_gradients_match_finite_differences(partial, edge_norm):
    torch.manual_seed(0)
    cell, discrete = SearchCell(units=4, nodes=3, partial=partial).double(), GenotypeCell(CHAIN, 4).double()
    with torch.no_grad():  # weights of order 1 (not the init's 0.04): batch statistics far from degenerate
        for p in [*cell.parameters(), *discrete.parameters()]:
            p.mul_(25)
    x, h = torch.randn(2, 5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)  # [T, B, D], [B, D]
    alpha = torch.randn(6, 5, dtype=torch.float64)
    beta = torch.randn(6, dtype=torch.float64)
    x_mask, h_mask = (torch.rand(5, 4, dtype=torch.float64) + 0.5 for _ in range(2))

    def run(x, h, alpha, beta):
        edge = torch.softmax(beta, 0) if edge_norm else None  # one node's softmax is enough for the check
        return cell(x, h, x_mask, h_mask, CellMix(torch.softmax(alpha, -1), edge_scale=edge))

    inputs = tuple(t.requires_grad_() for t in (x, h, alpha, beta))
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradcheck(lambda x, h: discrete(x, h, x_mask, h_mask), inputs[:2])


def test_search_cell_with_one_hot_weights_is_the_genotype_cell():
    """An independent check of the vectorised mixture: weights selecting one edge and op per node reduce the
    supernet cell (batch norm removed) to the discrete cell with the same matrices."""
    torch.manual_seed(0)
    search, discrete = SearchCell(units=4, nodes=3, partial=1), GenotypeCell(CHAIN, 4)
    search.bn = nn.Identity()
    discrete.w0.data.copy_(search.w0.data)
    for w_d, w_s in zip(discrete.ws, search.ws):
        w_d.data.copy_(w_s.data)
    weights = torch.zeros(6, 5)  # rows: edges (0,1) (0,2) (1,2) (0,3) (1,3) (2,3)
    for row, op in ((0, "relu"), (2, "tanh"), (3, "identity")):
        weights[row, RNN_OP_NAMES.index(op)] = 1.0
    x, h = torch.randn(3, 2, 4), torch.randn(2, 4)
    h_mask = torch.rand(2, 4) + 0.5
    assert torch.allclose(search(x, h, None, h_mask, CellMix(weights)), discrete(x, h, None, h_mask), atol=1e-6)
    path = CellMix(None, active=[(int(w.argmax()),) if w.any() else () for w in weights])  # one op, weight 1
    assert torch.allclose(search(x, h, None, h_mask, path), discrete(x, h, None, h_mask), atol=1e-6)


def test_with_partial_channels_a_single_path_equals_the_one_hot_mixture():
    torch.manual_seed(0)
    cell = SearchCell(units=4, nodes=3, partial=2).eval()
    ops = ["relu", "tanh", "identity", "sigmoid", "relu", "tanh"]  # every edge computed: each passes its rest
    weights = torch.zeros(6, 5)
    for row, op in enumerate(ops):
        weights[row, RNN_OP_NAMES.index(op)] = 1.0
    x, h = torch.randn(3, 2, 4), torch.randn(2, 4)
    path = CellMix(None, active=[(RNN_OP_NAMES.index(op),) for op in ops])
    mixture = cell(x, h, None, None, CellMix(weights))
    assert torch.allclose(cell(x, h, None, None, path), mixture, atol=1e-6)


def test_a_single_path_runs_without_the_architecture_parameters():
    torch.manual_seed(0)
    model = RnnSupernet(TINY, VOCAB, SupernetOptions(partial_channels=2, mixer=EdgeNormalizedMixer()))
    with model.mixed_by(PathMixer(model, CHAIN)):
        model.loss(window(tokens(4), first=True)).backward()
    assert all(p.grad is None for p in model.arch_parameters())
    assert isinstance(model.mixer, EdgeNormalizedMixer)
    model.loss(window(tokens(4))).backward()
    assert all(p.grad is not None for p in model.arch_parameters())
    with pytest.raises(UserError, match="not edges of this supernet"):
        PathMixer(model, PUBLISHED["DARTS_V2"])  # 8 nodes; this supernet has 3


def test_supernet_arch_weights_and_derive():
    torch.manual_seed(0)
    model = RnnSupernet(RnnConfig(units=4), VOCAB, SupernetOptions())
    assert model.mixer.strengths(model)["recurrent"].shape == (36, 5)
    assert "alpha_recurrent" in model.state_dict()
    assert len(model.arch_parameters()) == 1 and len(model.weight_parameters()) == len(list(model.parameters())) - 1
    with torch.no_grad():
        model.alpha_recurrent.zero_()
        model.alpha_recurrent[:, 0] = 5.0  # none dominates everywhere: derive must still skip it
        model.alpha_recurrent[0, RNN_OP_NAMES.index("sigmoid")] = 1.0  # edge 0 -> 1
        model.alpha_recurrent[2, RNN_OP_NAMES.index("relu")] = 1.0  # edge 1 -> 2 beats edge 0 -> 2
    genotype = model.derive(model.mixer.strengths(model))
    assert genotype.cell("recurrent")[:2] == (Edge("sigmoid", 0, 1), Edge("relu", 1, 2))
    assert [e.dst for e in genotype.cell("recurrent")] == list(range(1, 9))
    assert genotype.concat_of("recurrent") == tuple(range(1, 9))


def test_partial_channels_must_divide_the_hidden_units():
    with pytest.raises(UserError, match="multiple of K"):
        RnnSupernet(RnnConfig(units=6), VOCAB, SupernetOptions(partial_channels=4))


def test_published_genotypes_round_trip():
    space = RnnSpace()
    v2 = space.genotype("DARTS_V2")
    assert v2.cell("recurrent")[0] == Edge("sigmoid", 0, 1) and v2.cell("recurrent")[-1] == Edge("relu", 5, 8)
    for genotype in PUBLISHED.values():
        text = space.format_genotype(genotype)
        assert text.startswith("Genotype(recurrent=[(") and text.endswith("concat=[1, 2, 3, 4, 5, 6, 7, 8])")
        assert space.parse_genotype(text) == genotype


@pytest.mark.parametrize(
    "text,message",
    [
        ("Genotype(recurrent=[('conv', 0)], concat=[1])", "outside the rnn space"),
        ("Genotype(recurrent=[('relu', 0), ('tanh', 2)], concat=[1, 2])", "src < dst"),
        ("Genotype(recurrent=[('none', 0)], concat=[1])", "other than none"),
        ("Genotype(recurrent=[('relu', 0)], concat=[1, 5])", "concat"),
    ],
)
def test_bad_genotype_text_is_a_user_error(text, message):
    with pytest.raises(UserError, match=message):
        RnnSpace().parse_genotype(text)


def test_sampled_genotypes_are_valid_and_seeded():
    space = RnnSpace()
    a = space.sample_genotype(RnnConfig(), torch.Generator().manual_seed(1))
    b = space.sample_genotype(RnnConfig(), torch.Generator().manual_seed(1))
    assert a == b and space.parse_genotype(space.format_genotype(a)) == a


def test_evaluation_model_has_the_published_23m_parameters():
    # DARTS table 2: 23M parameters on PTB (10,000-word vocabulary, 850 units, 8 nodes).
    model = evaluation_network(PUBLISHED["DARTS_V2"], 10_000)
    n = sum(p.numel() for p in model.parameters())
    assert n == 10_000 * 850 + 10_000 + (2 * 850) * (2 * 850) + 8 * 850 * (2 * 850)  # embedding, bias, W0, W1..8
    assert round(n / 1e6) == 23


def test_batch_lr_scales_the_weight_learning_rate_for_one_step():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=20.0)
    with batch_lr(opt, window(tokens(3), lr_scale=0.5)):
        assert opt.param_groups[0]["lr"] == 10.0
    assert opt.param_groups[0]["lr"] == 20.0
    with batch_lr(opt, (torch.zeros(1), torch.zeros(1))):  # batches without a scale: unchanged
        assert opt.param_groups[0]["lr"] == 20.0


def test_bad_space_config_is_a_user_error():
    with pytest.raises(UserError, match=r"space.dropout=1.0 \(must be in \[0, 1\)\)"):
        check_bounds({"space": RnnConfig(dropout=1.0)})
    with pytest.raises(UserError, match="bptt"):
        RnnConfig(bptt=2, tar_beta=1e-3).check()


def test_load_data_reads_a_corpus_folder(tmp_path):
    for name, text in (("train", "a b <unk> c\n" * 40), ("valid", "c b zebra\n" * 30), ("test", "a\n")):
        (tmp_path / f"{name}.txt").write_text(text)
    cfg = tiny_config("darts1", "rnn")  # batch 4, bptt 5, scored at batch 4
    data = RnnSpace().load_data(str(tmp_path), cfg, torch.device("cpu"), seed=0)
    assert data.info["vocab_size"] == 5  # a b <unk> c <eos>
    assert "30 valid" in data.description and str(tmp_path) in data.description  # zebra -> <unk>, said so
    # the weight windows walk the whole text (50 rows, 49 positions with a next token; the reference stops
    # once fewer than 2 are left), and each architecture window starts where its weight window does, modulo
    # valid.txt's 29 positions with a next token (120 tokens in 4 columns: 30 rows)
    weights, arch = list(data.train.epoch(0)), list(data.val.epoch(0))
    assert data.train.steps(0) == data.val.steps(0) == len(weights) == len(arch)
    assert sum(len(w.inputs) for w in weights) in (48, 49)
    starts = [0] + [int(n) for n in torch.cumsum(torch.tensor([len(w.inputs) for w in weights]), 0)[:-1]]
    for a, start in zip(arch, starts):
        begin = start % 29
        assert torch.equal(a.inputs, data.val.data[begin : begin + min(5, 29 - begin)])
    first = next(iter(data.train.epoch(0)))
    assert first.inputs.shape == (5, 4) and first.first and first.split == "train"
    with pytest.raises(UserError, match="--download"):
        RnnSpace().load_data(str(tmp_path), cfg, torch.device("cpu"), seed=0, download=True)
    with pytest.raises(UserError, match="lacks"):
        RnnSpace().load_data(str(tmp_path / "nowhere"), cfg, torch.device("cpu"), seed=0)


def test_records_from_before_the_whole_text_walk_read_as_the_fixed_window_count():
    from nasbench.report import flat_settings
    from nasbench.results import RunRecord

    config = {"data": None, "train": {}, "space_config": {"bptt": 35}, "searcher_config": {}}
    old = RunRecord(searcher="darts1", space="rnn", seed=0, preset="tiny", config=config, provenance={}, data="")
    assert flat_settings(old)["space.whole_text"] is False
    assert RnnConfig().whole_text is True
