"""`nasbench derive`: re-deriving a finished search by DARTS-PT equals a search started with `derive=pt`."""

import json

import pytest

import nasbench
from nasbench.cli import main
from nasbench.derive import rederive
from nasbench.errors import UserError

PT = {"pt_interval": 1}


def folder_of(out):
    (record,) = out.rglob("record.json")
    return record.parent


def comparable(record):
    """What a derivation decides and computes, without times and paths."""
    keys = ("val_loss", "train_loss", "genotype", "pt_decisions", "arch_weights")
    return record.genotype, [{k: e.get(k) for k in keys} for e in record.epochs]


def test_rederiving_by_pt_equals_a_search_started_with_pt_and_leaves_the_search_alone(tmp_path):
    direct = nasbench.search("darts1", "nb201", preset="tiny", settings={"derive": "pt", **PT}, out=tmp_path / "a")
    nasbench.search("darts1", "nb201", preset="tiny", out=tmp_path / "b")
    source = folder_of(tmp_path / "b")
    before = (source / "record.json").read_bytes()
    derived = rederive(source, "pt", PT, echo=lambda line: None)
    assert derived.status == "completed" and len(derived.epochs) > 2  # the search's 2 epochs, then projection
    assert any(e.get("pt_decisions") for e in derived.epochs)
    assert comparable(derived) == comparable(direct)
    assert derived.config["searcher_config"]["derive"] == "pt"
    assert (source / "record.json").read_bytes() == before
    again = rederive(source, "pt", PT, echo=lambda line: None)  # a finished derivation is handed back as it is
    assert comparable(again) == comparable(derived)


def test_what_cannot_be_re_derived_is_refused_with_the_reason(tmp_path, capsys):
    with pytest.raises(UserError, match="'threshold' cannot be applied after a search"):
        rederive(tmp_path, "threshold", echo=lambda line: None)
    nasbench.search("random", "nb201", preset="tiny", out=tmp_path / "random")
    with pytest.raises(UserError, match="no supernet to derive from"):
        rederive(folder_of(tmp_path / "random"), "pt", echo=lambda line: None)
    nasbench.search("darts1", "nb201", preset="tiny", settings={"derive": "pt", **PT}, out=tmp_path / "pt")
    with pytest.raises(UserError, match="derived by DARTS-PT already"):
        rederive(folder_of(tmp_path / "pt"), "pt", echo=lambda line: None)
    running = folder_of(tmp_path / "pt")
    raw = json.loads((running / "record.json").read_text())
    (running / "record.json").write_text(json.dumps({**raw, "status": "interrupted"}))
    assert main(["derive", str(running), "--rule", "pt"]) == 2
    assert "re-derive from a completed search" in capsys.readouterr().err
    assert main(["derive", str(tmp_path / "nowhere"), "--rule", "pt"]) == 2
    assert "holds no run record" in capsys.readouterr().err
