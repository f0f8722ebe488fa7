import pytest
import torch

from nasbench.errors import UserError
from nasbench.genotype import Edge, Genotype, derive_top_k, edge_index, format_darts, parse_darts
from nasbench.spaces.cnn import PUBLISHED, CnnSpace

OPS = ("none", "a", "b")


def test_edge_index_counts_the_papers_edges():
    assert len(edge_index(2, 4)) == 14  # DARTS CNN cell
    assert len(edge_index(1, 8)) == 36  # DARTS RNN cell
    assert edge_index(2, 2) == [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]


def test_derive_top_k_on_hand_written_weights():
    # 2 inputs, 2 nodes -> edges (0,2) (1,2) (0,3) (1,3) (2,3); columns none, a, b
    w = torch.tensor(
        [
            [0.9, 0.05, 0.05],  # (0,2): none dominates, but its best real op weighs only 0.05
            [0.2, 0.1, 0.7],  # (1,2): b at 0.7
            [0.1, 0.6, 0.3],  # (0,3): a at 0.6
            [0.0, 0.3, 0.7],  # (1,3): b at 0.7
            [0.5, 0.45, 0.05],  # (2,3): a at 0.45
        ]
    )
    edges = derive_top_k(w, OPS, n_inputs=2, n_nodes=2, k=2)
    # node 2 has only two incoming edges: both kept, with their best non-none op
    # node 3 keeps (1,3) b 0.7 and (0,3) a 0.6, drops (2,3) a 0.45; edges are listed by source
    assert edges == (
        Edge("a", 0, 2),
        Edge("b", 1, 2),
        Edge("a", 0, 3),
        Edge("b", 1, 3),
    )


def test_derive_top_1_picks_the_strongest_predecessor():
    w = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.2, 0.8], [0.9, 0.05, 0.05]])  # 1 input, 2 nodes
    assert derive_top_k(w, OPS, n_inputs=1, n_nodes=2, k=1) == (Edge("a", 0, 1), Edge("b", 0, 2))


def test_derive_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="expected"):
        derive_top_k(torch.zeros(3, 3), OPS, n_inputs=2, n_nodes=2, k=2)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_cells_round_trip_through_text(name):
    space = CnnSpace()
    g = PUBLISHED[name]
    assert space.parse_genotype(space.format_genotype(g)) == g
    assert all(len(g.cell(c)) == 8 for c in ("normal", "reduce"))


def test_darts_v2_has_the_published_normal_cell():
    g = PUBLISHED["DARTS_V2"]
    normal = g.cell("normal")
    assert [e.op for e in normal].count("sep_conv_3x3") == 5
    assert Edge("dil_conv_3x3", 2, 5) in normal
    assert g.concat_of("reduce") == (2, 3, 4, 5)


def test_parse_accepts_range_concat_and_rebuilds_destinations():
    g = parse_darts("Genotype(recurrent=[('tanh', 0), ('relu', 1)], concat=range(1, 3))", ["recurrent"], 1, 1)
    assert g == Genotype.of({"recurrent": [Edge("tanh", 0, 1), Edge("relu", 1, 2)]}, {"recurrent": [1, 2]})
    assert format_darts(g) == "Genotype(recurrent=[('tanh', 0), ('relu', 1)], concat=[1, 2])"


@pytest.mark.parametrize(
    "text",
    ["nonsense", "Genotype(normal=[('sep_conv_3x3', 0)]", "Genotype(normal=[(1, 2, 3)], normal_concat=[2])"],
)
def test_bad_genotype_text_is_a_user_error(text):
    with pytest.raises(UserError):
        CnnSpace().parse_genotype(text)


def test_unknown_op_is_refused():
    text = PUBLISHED["DARTS_V1"]
    bad = format_darts(text).replace("max_pool_3x3", "max_pool_9x9")
    with pytest.raises(UserError, match="max_pool_9x9"):
        CnnSpace().parse_genotype(bad)
