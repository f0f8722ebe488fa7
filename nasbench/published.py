"""Published results, as data, for the "published" rows printed beside measured ones.

Each row says which paper and table it comes from, the hardware, and how that paper counted search cost
(papers differ: DARTS counts its four repeated searches, later papers count one search).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedRow:
    space: str  # nasbench space name
    searcher: str  # nasbench searcher that implements the method
    label: str
    paper: str  # paper and table
    hardware: str
    cost_convention: str
    search_gpu_days: float | None
    params_m: float | None = None
    score: float | None = None  # in the table's unit: test error % (cnn), test perplexity (rnn)
    score_std: float | None = None
    true_test_acc: float | None = None  # nb201: CIFAR-10 test accuracy % from the benchmark's table
    true_test_acc_std: float | None = None


_DARTS = "Liu et al., ICLR 2019"
_DARTS_GPU = "1 GTX 1080Ti"
_DARTS_CNN_COST = "as reported: includes DARTS' 4 repeated searches and picking the best cell (sec. 3.2)"
_DARTS_RNN_COST = "as reported in DARTS Table 2"
_LI = "Li & Talwalkar, UAI 2019"
_LI_COST = "as reported: search plus the paper's final retraining of its best cells"
_NB201 = "Dong & Yang, ICLR 2020, NAS-Bench-201 Table 5 (CIFAR-10)"
_NB201_COST = "as reported: search time of one run, converted from seconds"

PUBLISHED: tuple[PublishedRow, ...] = (
    # DARTS Table 1: CIFAR-10 test error (%) of the searched cell trained from scratch (with cutout).
    PublishedRow(
        space="cnn",
        searcher="random",
        label="Random search baseline",
        paper=f"{_DARTS}, Table 1",
        hardware=_DARTS_GPU,
        cost_convention=_DARTS_CNN_COST,
        search_gpu_days=4.0,
        params_m=3.2,
        score=3.29,
        score_std=0.15,
    ),
    PublishedRow(
        space="cnn",
        searcher="darts1",
        label="DARTS (first order)",
        paper=f"{_DARTS}, Table 1",
        hardware=_DARTS_GPU,
        cost_convention=_DARTS_CNN_COST,
        search_gpu_days=1.5,
        params_m=3.3,
        score=3.00,
        score_std=0.14,
    ),
    PublishedRow(
        space="cnn",
        searcher="darts2",
        label="DARTS (second order)",
        paper=f"{_DARTS}, Table 1",
        hardware=_DARTS_GPU,
        cost_convention=_DARTS_CNN_COST,
        search_gpu_days=4.0,
        params_m=3.3,
        score=2.76,
        score_std=0.09,
    ),
    # PC-DARTS Table 1 (Xu et al., ICLR 2020): CIFAR-10 test error (%), one search.
    PublishedRow(
        space="cnn",
        searcher="pcdarts",
        label="PC-DARTS",
        paper="Xu et al., ICLR 2020, Table 1",
        hardware="1 GTX 1080Ti",
        cost_convention="as reported: one search",
        search_gpu_days=0.1,
        params_m=3.6,
        score=2.57,
        score_std=0.07,
    ),
    # DARTS Table 2: Penn Treebank test perplexity of the searched cell trained from scratch.
    PublishedRow(
        space="rnn",
        searcher="random",
        label="Random search baseline",
        paper=f"{_DARTS}, Table 2",
        hardware=_DARTS_GPU,
        cost_convention=_DARTS_RNN_COST,
        search_gpu_days=2.0,
        params_m=23.0,
        score=59.4,
    ),
    PublishedRow(
        space="rnn",
        searcher="darts1",
        label="DARTS (first order)",
        paper=f"{_DARTS}, Table 2",
        hardware=_DARTS_GPU,
        cost_convention=_DARTS_RNN_COST,
        search_gpu_days=0.5,
        params_m=23.0,
        score=57.6,
    ),
    PublishedRow(
        space="rnn",
        searcher="darts2",
        label="DARTS (second order)",
        paper=f"{_DARTS}, Table 2",
        hardware=_DARTS_GPU,
        cost_convention=_DARTS_RNN_COST,
        search_gpu_days=1.0,
        params_m=23.0,
        score=55.7,
    ),
    # Li & Talwalkar, UAI 2019: random search with weight sharing (search plus their final retraining).
    PublishedRow(
        space="cnn",
        searcher="randomws",
        label="Random search with weight sharing",
        paper=f"{_LI}, Table 5",
        hardware="P100 GPUs",
        cost_convention=_LI_COST,
        search_gpu_days=9.7,
        params_m=4.3,
        score=2.85,
        score_std=0.08,
    ),
    PublishedRow(
        space="rnn",
        searcher="randomws",
        label="Random search with weight sharing",
        paper=f"{_LI}, Table 2",
        hardware="P100 GPUs",
        cost_convention=_LI_COST,
        search_gpu_days=1.25,
        params_m=23.0,
        score=55.5,
    ),
    # NAS-Bench-201: the benchmark's ground-truth CIFAR-10 test accuracy of the cell each method found.
    PublishedRow(
        space="nb201",
        searcher="randomws",
        label="Random search with weight sharing (RSPS)",
        paper=_NB201,
        hardware="1 GPU",
        cost_convention=_NB201_COST,
        search_gpu_days=7587.12 / 86400,
        true_test_acc=87.66,
        true_test_acc_std=1.69,
    ),
    PublishedRow(
        space="nb201",
        searcher="darts1",
        label="DARTS (first order)",
        paper=_NB201,
        hardware="1 GPU",
        cost_convention=_NB201_COST,
        search_gpu_days=10889.87 / 86400,
        true_test_acc=54.30,
        true_test_acc_std=0.0,
    ),
    PublishedRow(
        space="nb201",
        searcher="darts2",
        label="DARTS (second order)",
        paper=_NB201,
        hardware="1 GPU",
        cost_convention=_NB201_COST,
        search_gpu_days=29901.67 / 86400,
        true_test_acc=54.30,
        true_test_acc_std=0.0,
    ),
)
