"""Published Penn Treebank results on the DARTS recurrent space (test perplexity of the searched cell
trained from scratch)."""

from __future__ import annotations

from nasbench.published.row import PublishedRow

_DARTS = "Liu et al., ICLR 2019, Table 2"
_COST = "as reported in DARTS Table 2"

PTB: tuple[PublishedRow, ...] = (
    PublishedRow(
        "rnn",
        "random",
        "Random search baseline",
        _DARTS,
        "1 GTX 1080Ti",
        _COST,
        2.0,
        params_m=23.0,
        score=59.4,
        checked="DARTS Table 2",
    ),
    PublishedRow(
        "rnn",
        "darts1",
        "DARTS (first order)",
        _DARTS,
        "1 GTX 1080Ti",
        _COST,
        0.5,
        params_m=23.0,
        score=57.6,
        checked="DARTS Table 2",
    ),
    PublishedRow(
        "rnn",
        "darts2",
        "DARTS (second order)",
        _DARTS,
        "1 GTX 1080Ti",
        _COST,
        1.0,
        params_m=23.0,
        score=55.7,
        # Table 4: the PTB cell on WikiText-2 (33M parameters at 700 units)
        transfer={"wikitext2": {"val_ppl": 71.2, "test_ppl": 69.6, "params_m": 33.0}},
        checked="DARTS Table 2; WikiText-2: DARTS Table 4",
    ),
    PublishedRow(
        "rnn",
        "randomws",
        "Random search with weight sharing (Random (4))",
        "Li & Talwalkar, UAI 2019, Table 2",
        "P100 GPUs",
        "as reported: search plus the paper's final retraining of its best cells",
        1.25,
        params_m=23.0,
        score=55.5,
        checked="Li & Talwalkar Table 2; its supplement's Table 7 "
        "(the 850-unit network, batch 64, clip 0.1) -- not the 300-unit supernet this suite's randomws "
        "trains on PTB",
    ),
    PublishedRow(
        "rnn",
        "",
        "ENAS cell, trained in DARTS' setup",
        "Liu et al., ICLR 2019, Table 4 (the ENAS cell of Pham et al., ICML 2018)",
        "1 GTX 1080Ti",
        "as reported in DARTS Table 4 (ENAS' own search)",
        0.5,
        transfer={"wikitext2": {"val_ppl": 72.4, "test_ppl": 70.4, "params_m": 33.0}},
        checked="DARTS Table 4",
    ),
)
