"""Published CIFAR-10 results on the DARTS CNN space (test error % of the searched cell trained from scratch
with the DARTS evaluation protocol), and on RobustDARTS' reduced spaces S1-S4."""

from __future__ import annotations

from nasbench.published.row import PublishedRow

_DARTS = "Liu et al., ICLR 2019, Table 1"
_GPU = "1 GTX 1080Ti"
_ONE = "as reported: one search"
_DARTS_COST = "as reported: includes DARTS' 4 repeated searches and picking the best cell (sec. 3.2)"
_LI_COST = "as reported: search plus the paper's final retraining of its best cells"
_REPRINT = "the primary table was not read here; values as reprinted by"


def _cnn(
    searcher: str, label: str, paper: str, hardware: str, cost: str, days: float | None, **numbers
) -> PublishedRow:
    return PublishedRow(
        space="cnn",
        searcher=searcher,
        label=label,
        paper=paper,
        hardware=hardware,
        cost_convention=cost,
        search_gpu_days=days,
        **numbers,
    )


DARTS_SPACE: tuple[PublishedRow, ...] = (
    _cnn(
        "random",
        "Random search baseline",
        _DARTS,
        _GPU,
        _DARTS_COST,
        4.0,
        params_m=3.2,
        score=3.29,
        score_std=0.15,
        checked="DARTS Table 1; reprinted by Li & Talwalkar 2019, Tables 2 and 5",
    ),
    _cnn(
        "darts1",
        "DARTS (first order)",
        _DARTS,
        _GPU,
        _DARTS_COST,
        1.5,
        params_m=3.3,
        score=3.00,
        score_std=0.14,
        checked="DARTS Table 1; PC-DARTS README and DARTS-PT Table 2 agree",
    ),
    _cnn(
        "darts2",
        "DARTS (second order)",
        _DARTS,
        _GPU,
        _DARTS_COST,
        4.0,
        params_m=3.3,
        score=2.76,
        score_std=0.09,
        # Table 3: the CIFAR-10 cell on ImageNet, mobile setting
        transfer={"imagenet": {"top1_err": 26.7, "top5_err": 8.7, "params_m": 4.7, "mult_adds_m": 574.0}},
        checked="DARTS Table 1; quark0/darts README (2.76 +/- 0.09 over 10 runs); ImageNet: DARTS Table 3, its README "
        "(26.7 / 8.7 %, 4.7M) and the PC-DARTS README (574M) agree",
    ),
    _cnn(
        "pcdarts",
        "PC-DARTS",
        "Xu et al., ICLR 2020, Table 1",
        _GPU,
        _ONE,
        0.1,
        params_m=3.6,
        score=2.57,
        score_std=0.07,
        # Table 3: the CIFAR-10 cell on ImageNet (top-1 / top-5 accuracy 74.9 / 92.2 as reprinted)
        transfer={"imagenet": {"top1_err": 25.1, "top5_err": 7.8, "params_m": 5.3, "mult_adds_m": 586.0}},
        checked="yuhuixu1993/PC-DARTS README; DrNAS README agrees; ImageNet: the primary table was not read here, "
        "values as reprinted by OTOv3 (Chen et al.), Table 3",
    ),
    _cnn(
        "randomws",
        "Random search with weight sharing",
        "Li & Talwalkar, UAI 2019, Table 5",
        "P100 GPUs",
        _LI_COST,
        9.7,
        params_m=4.3,
        score=2.85,
        score_std=0.08,
        checked="Li & Talwalkar Table 5",
    ),
    _cnn(
        "gdas",
        "GDAS",
        "Dong & Yang, CVPR 2019, Table 1",
        "1 V100",
        _ONE,
        0.3,
        params_m=3.4,
        score=2.93,
        checked=f"{_REPRINT} DARTS-PT Table 2 and NASI (7.2 GPU-hours), which agree",
    ),
    _cnn(
        "gdas",
        "GDAS (FRC: fixed reduction cell)",
        "Dong & Yang, CVPR 2019, Table 1",
        "1 V100",
        _ONE,
        0.17,
        params_m=2.5,
        score=2.82,
        checked="GDAS abstract (four GPU hours, 2.82 %, 2.5M); TE-NAS Table 2 agrees",
    ),
    _cnn(
        "snas",
        "SNAS (moderate constraint)",
        "Xie et al., ICLR 2019, Table 1",
        "8 GPUs",
        _ONE,
        1.5,
        params_m=2.8,
        score=2.85,
        score_std=0.02,
        checked=f"{_REPRINT} DARTS-PT Table 2, TE-NAS, DrNAS and PC-DARTS READMEs",
    ),
    _cnn(
        "drnas",
        "DrNAS (progressive)",
        "Chen et al., ICLR 2021, Table 2",
        "1 GPU",
        _ONE,
        0.6,
        params_m=4.1,
        score=2.46,
        score_std=0.03,
        checked="xiangning-chen/DrNAS README; its abstract agrees",
    ),
    _cnn(
        "betadarts",
        "beta-DARTS",
        "Ye et al., CVPR 2022, Table 2",
        "1 GPU",
        _ONE,
        0.4,
        params_m=3.8,
        score=2.53,
        score_std=0.08,
        checked=f"{_REPRINT} two later papers that agree on the error",
    ),
    _cnn(
        "sdarts-rs",
        "SDARTS-RS",
        "Chen & Hsieh, ICML 2020, Table 1",
        "1 GPU",
        _ONE,
        0.4,
        params_m=3.4,
        score=2.67,
        score_std=0.03,
        checked=f"{_REPRINT} DARTS-PT Table 2",
    ),
    _cnn(
        "sdarts-adv",
        "SDARTS-ADV",
        "Chen & Hsieh, ICML 2020, Table 1",
        "1 GPU",
        _ONE,
        1.3,
        params_m=3.3,
        score=2.61,
        score_std=0.02,
        checked=f"{_REPRINT} TE-NAS Table 2 and NASI, which agree",
    ),
    _cnn(
        "darts-minus",
        "DARTS- (average)",
        "Chu et al., ICLR 2021, Table 1",
        "1 GPU",
        _ONE,
        0.4,
        params_m=3.5,
        score=2.59,
        score_std=0.08,
        checked=f"{_REPRINT} NASI and APD, which agree",
    ),
    _cnn(
        "fairdarts",
        "FairDARTS (FairDARTS-a)",
        "Chu et al., ECCV 2020, Table 2",
        "1 GPU",
        _ONE,
        None,
        params_m=2.83,
        score=2.54,
        checked="xiaomi-automl/FairDARTS README (97.46 % accuracy); cost not found",
    ),
    _cnn(
        "darts-pt",
        "DARTS+PT (mean of 4 seeds)",
        "Wang et al., ICLR 2021, Table 2",
        _GPU,
        _ONE,
        0.8,
        params_m=3.0,
        score=2.61,
        score_std=0.08,
        checked="the DARTS-PT paper text (submission version); APD agrees",
    ),
    _cnn(
        "rdarts-l2",
        "R-DARTS (L2)",
        "Zela et al., ICLR 2020, as reprinted by DARTS-PT Table 2",
        "1 GPU",
        _ONE,
        1.6,
        score=2.95,
        score_std=0.21,
        checked=f"{_REPRINT} DARTS-PT Table 2 and NASI, which agree",
    ),
    # RobustDARTS' spaces S1-S4 (sec. 4), CIFAR-10, DARTS: the failure the anti-collapse methods address
    *(
        _cnn(
            "darts2",
            f"DARTS on {name.upper()}",
            "Zela et al., ICLR 2020, Table 1",
            "1 GPU",
            _ONE,
            None,
            score=error,
            settings={"space.op_set": name},
            checked=f"{_REPRINT} DARTS-PT Table 3",
        )
        for name, error in (("s1", 3.84), ("s2", 4.85), ("s3", 3.34), ("s4", 7.20))
    ),
)
