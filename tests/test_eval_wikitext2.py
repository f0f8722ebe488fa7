"""WikiText-2 transfer: the published model size, the README's settings, the corpus layouts, and
`nasbench eval --dataset wikitext2` end to end on a small corpus in WikiText-2's format (the PTB slice's text)."""

import pytest

from nasbench.cli import main
from nasbench.data import builtin_path
from nasbench.data.ptb import WIKITEXT2_LAYOUT, load_corpus
from nasbench.eval.rnn import RnnEvalConfig, WikiText2EvalConfig, WikiText2EvalTask
from nasbench.eval.trainer import resolve_eval_config
from nasbench.metrics.flops import params_m
from nasbench.results import RunRecord
from nasbench.spaces.rnn import PUBLISHED, RnnSpace
from nasbench.spaces.rnn_network import Regime, RnnNetwork
from tests.test_eval import search_record

TINY = ["eval", "--preset", "tiny", "--device", "cpu", "--quiet", "--dataset", "wikitext2"]


def test_published_wikitext2_model_has_33m_parameters():
    # DARTS Table 2: the DARTS cell on WikiText-2, 33M parameters (33,278 words, 700 units, tied embedding)
    cfg = WikiText2EvalConfig()
    net = RnnNetwork(PUBLISHED["DARTS_V2"], vocab_size=33_278, units=cfg.units, regime=Regime())
    assert round(params_m(net)) == 33


def test_wikitext2_settings_are_the_readme_command():
    """quark0/darts README: --dropouth 0.15 --emsize 700 --nhidlast 700 --nhid 700 --wdecay 5e-7; the rest as PTB."""
    wt2, ptb = WikiText2EvalConfig(), RnnEvalConfig()
    assert (wt2.units, wt2.dropouth, wt2.w_weight_decay) == (700, 0.15, 5e-7)
    differing = {k for k in vars(ptb) if getattr(ptb, k) != getattr(wt2, k)}
    assert differing == {"units", "dropouth", "w_weight_decay"}


@pytest.fixture
def wikitext_folder(tmp_path):
    """wiki.*.tokens files holding the PTB slice's text, with WikiText's blank lines and headings."""
    root = tmp_path / "wikitext-2"
    root.mkdir()
    ptb = builtin_path("ptb-mini")
    for split in ("train", "valid", "test"):
        lines = (ptb / f"{split}.txt").read_text().splitlines()[:300]
        text = "\n = heading = \n\n" + "\n".join(lines) + "\n"
        (root / f"wiki.{split}.tokens").write_text(text)
    return root


def test_wikitext2_files_load_with_their_names_and_as_renamed(wikitext_folder):
    corpus = load_corpus(wikitext_folder, WIKITEXT2_LAYOUT)
    assert "heading" in corpus.words and corpus.train.numel() > 1000
    for split in ("train", "valid", "test"):  # AWD-LSTM's getdata.sh renames them to train.txt and so on
        (wikitext_folder / f"wiki.{split}.tokens").rename(wikitext_folder / f"{split}.txt")
    renamed = load_corpus(wikitext_folder, WIKITEXT2_LAYOUT)
    assert renamed.words == corpus.words and bool((renamed.test == corpus.test).all())


def test_wikitext2_eval_end_to_end_adds_the_transfer_to_the_search_record(wikitext_folder, tmp_path, capsys):
    genotype = RnnSpace().format_genotype(PUBLISHED["DARTS_V1"])
    path = search_record(tmp_path / "search" / "record.json", genotype, "darts2", "rnn", test_ppl=60.0)
    out = tmp_path / "out"
    assert main([*TINY, "--record", str(path), "--data", str(wikitext_folder), "--out", str(out)]) == 0
    (run_dir,) = list((out / "rnn").iterdir())
    assert run_dir.name.startswith("eval-wikitext2-search-tiny-seed0")
    record = RunRecord.load(run_dir / "record.json")
    assert record.status == "completed" and record.config["dataset"] == "wikitext2"
    assert record.data.startswith(f"WikiText-2 from {wikitext_folder}")
    assert 1.0 < record.metrics["test_ppl"] < 1e5
    assert resolve_eval_config(WikiText2EvalTask, "tiny", None, {}) == WikiText2EvalTask.config_cls(
        **record.config["eval"]
    )
    updated = RunRecord.load(path)
    assert updated.metrics["test_ppl"] == 60.0
    assert updated.metrics["transfer"]["wikitext2"]["test_ppl"] == record.metrics["test_ppl"]
    assert "search record gains its WikiText-2 result" in capsys.readouterr().out


def test_wikitext2_needs_its_files(tmp_path, capsys):
    assert main([*TINY, "--genotype", "DARTS_V2", "--out", str(tmp_path)]) == 2
    assert "WikiText-2 has no built-in slice: pass --data DIR" in capsys.readouterr().err
    assert main([*TINY, "--genotype", "DARTS_V2", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "lacks wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens" in capsys.readouterr().err
    assert main([*TINY, "--genotype", "DARTS_V2", "--dataset", "mnist", "--out", str(tmp_path)]) == 2
    assert "--dataset mnist: no space is evaluated on it" in capsys.readouterr().err


def test_the_api_evaluates_on_another_data_set(wikitext_folder, tmp_path):
    import nasbench

    record = nasbench.evaluate(
        "DARTS_V2", dataset="wikitext2", preset="tiny", device="cpu", data=str(wikitext_folder), out=tmp_path
    )
    assert record.status == "completed" and record.space == "rnn" and record.config["dataset"] == "wikitext2"
    assert record.metrics["test_ppl"] > 1.0
