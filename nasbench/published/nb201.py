"""Published NAS-Bench-201 results: the ground-truth test accuracy (%) of the cell each method returned,
after the benchmark's 200-epoch training, on CIFAR-10, CIFAR-100 and ImageNet16-120 (search on CIFAR-10).

NAS-Bench-201's own Table 5 (Dong & Yang, ICLR 2020) could not be read here. Two different sets of numbers
for its weight-sharing methods are reprinted as that table by later papers, most likely its two blocks
(batch-norm statistics tracked or not, which its authors discuss in AutoDL-Projects issue 70): block A (for
example EEEA-Net, TE-NAS) and block B (ReLIZO, which says it quotes the NAS-Bench-201 paper; GENIUS, TE-NAS
for GDAS). Both are listed where both were found; each row says where it was checked. Costs are the search
times of one run in seconds, converted to days.
"""

from __future__ import annotations

from nasbench.published.row import PublishedRow

_T5 = "Dong & Yang, ICLR 2020, NAS-Bench-201 Table 5"
_COST = "as reported: search time of one run (seconds, converted)"
_A = "block A of Table 5 as reprinted by EEEA-Net (Table 9) and TE-NAS (Table 1)"
_NOT = "not given in that table"
_LOOKUPS = "as reported: a 12,000 s simulated budget per run"
_B = "block B of Table 5 as reprinted by ReLIZO (Table 2), which says it quotes the NAS-Bench-201 paper"


def _row(
    searcher: str,
    label: str,
    paper: str,
    seconds: float | None,
    checked: str,
    *accs: float | None,
    cost: str = _COST,
    hardware: str = "1 GPU",
) -> PublishedRow:
    """``accs``: CIFAR-10, CIFAR-100, ImageNet16-120 test accuracy, each followed by its std (None: not found)."""
    c10, c10_std, c100, c100_std, in16, in16_std = list(accs) + [None] * (6 - len(accs))
    return PublishedRow(
        space="nb201",
        searcher=searcher,
        label=label,
        paper=paper,
        hardware=hardware,
        cost_convention=cost,
        search_gpu_days=None if seconds is None else seconds / 86400,
        true_test_acc=c10,
        true_test_acc_std=c10_std,
        true_test_acc_cifar100=c100,
        true_test_acc_cifar100_std=c100_std,
        true_test_acc_imagenet16_120=in16,
        true_test_acc_imagenet16_120_std=in16_std,
        checked=checked,
    )


# fmt: off
NB201: tuple[PublishedRow, ...] = (
    _row("darts1", "DARTS-V1", _T5, 10889.87, f"{_B}; MathNAS and TE-NAS agree; block A is the same",
         54.30, 0.00, 15.61, 0.00, 16.32, 0.00),
    _row("darts2", "DARTS-V2", _T5, 29901.67, f"{_B}; TE-NAS agrees; block A is the same",
         54.30, 0.00, 15.61, 0.00, 16.32, 0.00),
    _row("randomws", "RSPS (block A)", _T5, 8007.13, f"{_A}, which agree on CIFAR-10 (TE-NAS differs on the others)",
         87.66, 1.69, 46.60, 6.57, 30.78, 6.12),
    _row("randomws", "RSPS (block B)", _T5, None, _B, 84.07, 3.61, 52.31, 5.77, 26.28, 3.09),
    _row("gdas", "GDAS (block B)", _T5, 28925.91, f"{_B}; GENIUS, TE-NAS and RMI-NAS agree on CIFAR-10",
         93.61, 0.09, 70.70, 0.30, 41.71, 0.98),
    _row("", "SETN (block B)", _T5, None, f"{_B}; MathNAS agrees", 87.64, 0.00, 59.05, 0.24, 32.52, 0.21),
    _row("", "ENAS (block A)", _T5, 13314.51, "block A as reprinted by TE-NAS (Table 1)",
         54.30, 0.00, 15.61, 0.00, 16.32, 0.00),
    _row("", "ENAS (block B)", _T5, None, _B, 53.89, 0.58, 13.96, 2.33, 14.84, 2.10),
    _row("random", "RS (random search, 500 runs)", _T5, None, "CIFAR-10 as quoted by two later papers that agree",
         93.70, 0.36, cost=_LOOKUPS, hardware="table look-ups"),
    _row("", "REINFORCE", _T5, None, "as reprinted by RMI-NAS's README; EEEA-Net agrees on CIFAR-10",
         93.85, 0.37, 71.71, 1.09, 45.24, 1.18, cost=_LOOKUPS, hardware="table look-ups"),
    _row("", "REA", _T5, None, "CIFAR-10 mean only, as quoted in one later paper's code; std not found", 93.92,
         cost=_LOOKUPS, hardware="table look-ups"),
    _row("", "BOHB", _T5, None, "CIFAR-10 mean only, as quoted in one later paper's code; std not found", 93.61,
         cost=_LOOKUPS, hardware="table look-ups"),
    _row("", "ResNet (hand-designed)", _T5, None, "EEEA-Net and TE-NAS agree", 93.97, None, 70.86, None, 43.63, None,
         cost="not a search", hardware="-"),
    _row("", "optimum (the best cell of the table)", _T5, None, "EEEA-Net, MathNAS, TE-NAS and DrNAS agree; this "
         "suite's built-in table gives 94.37 as well", 94.37, None, 73.51, None, 47.31, None, cost="not a search",
         hardware="-"),
    # later methods, searched on CIFAR-10 (unless said otherwise)
    _row("drnas", "DrNAS", "Chen et al., ICLR 2021, Table 3", None, "xiangning-chen/DrNAS README; GENIUS agrees",
         94.36, 0.00, 73.51, 0.00, 46.34, 0.00, cost=_NOT),
    _row("betadarts", "beta-DARTS", "Ye et al., CVPR 2022, Table 1", None,
         "the primary table was not read here; GENIUS (Table 1) and one more later paper agree",
         94.36, 0.00, 73.51, 0.00, 46.34, 0.00, cost=_NOT),
    _row("darts-minus", "DARTS-", "Chu et al., ICLR 2021, Table 4", None,
         "the primary table was not read here; MathNAS (Table 8) and one more later paper agree",
         93.80, 0.40, 71.53, 1.51, 45.12, 0.82, cost=_NOT),
    _row("darts-pt", "DARTS+PT", "Wang et al., ICLR 2021, Table 4", None,
         "the DARTS-PT paper text (submission version): test error 11.89 %; its author's reruns in their "
         "issue 6 give 88.21 and 88.18", 88.11, cost=_NOT),
    _row("pcdarts", "PC-DARTS (DrNAS' run, searched on each data set)", "Chen et al., ICLR 2021, Table 3", None,
         "xiangning-chen/DrNAS README; EEEA-Net and GENIUS agree", 93.41, 0.30, 67.48, 0.89, 41.31, 0.22, cost=_NOT),
    _row("snas", "SNAS (DrNAS' run, searched on each data set)", "Chen et al., ICLR 2021, Table 3", None,
         "xiangning-chen/DrNAS README; EEEA-Net and GENIUS agree", 92.77, 0.83, 69.34, 1.98, 43.16, 2.64, cost=_NOT),
)
# fmt: on
