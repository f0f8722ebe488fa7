"""Collapse metrics inside a search run: recorded per epoch, harmless to the search, and DARTS-ES."""

import pytest
import torch

import nasbench.metrics.collapse as collapse
from nasbench.runner import run
from nasbench.searchers.darts import DartsSearcher
from tests.conftest import tiny_config


def search(tmp_path, **sets):
    return run(tiny_config("darts1", "cnn", **sets), tmp_path, progress=False, echo=lambda line: None)


def test_epochs_carry_collapse_metrics_and_measuring_leaves_the_search_unchanged(tmp_path):
    measured = search(tmp_path / "a", hessian_every="1", hessian_iters="3")
    plain = search(tmp_path / "b", hessian_every="0")
    for epoch in measured.epochs:
        assert {"skip_count", "param_free_share", "alpha_entropy", "hessian_eig", "hessian_seconds"} <= set(epoch)
        assert 0 <= epoch["skip_count"] <= 4 and 0.0 <= epoch["param_free_share"] <= 1.0
        assert set(epoch["alpha_entropy"]) == {"normal", "reduce"}
    assert measured.epochs[0]["genotype_changed"] is None
    assert measured.epochs[1]["genotype_changed"] == (measured.epochs[1]["genotype"] != measured.epochs[0]["genotype"])
    assert all("hessian_eig" not in e for e in plain.epochs)
    assert measured.metrics["hessian_device_hours"] > 0 and plain.metrics["hessian_device_hours"] == 0
    keys = ("train_loss", "arch_loss", "val_loss", "genotype", "arch_weights")
    assert [{k: e[k] for k in keys} for e in measured.epochs] == [{k: e[k] for k in keys} for e in plain.epochs]


def test_darts_es_stops_and_returns_the_genotype_from_before_the_growth(tmp_path, monkeypatch):
    sequence = iter([1.0, 1.0, 5.0, 5.0])  # window 1, delta 1: the jump after epoch 3 is a growth x5 > x1.3

    def fake(model, batches, **kwargs):
        return {"hessian_eig": next(sequence), "hessian_hvps": 0, "hessian_seconds": 0.0}, torch.ones(1)

    monkeypatch.setattr(collapse, "supernet_hessian_eigenvalue", fake)
    sets = dict(early_stop_window="1", early_stop_delta="1", early_stop_start_epoch="0", arch_weight_decay="0")
    record = search(tmp_path, epochs="4", early_stop="true", **sets)
    assert record.status == "completed" and len(record.epochs) == 3
    assert record.metrics["early_stopped"] is True and record.metrics["early_stop_epoch"] == 2
    assert record.metrics["returned_epoch"] == 2 and record.metrics["returned_by"] == "DARTS-ES"
    assert "DARTS-ES" in record.metrics["early_stop_reason"]
    assert record.genotype == record.epochs[1]["genotype"]


def test_the_eigenvalue_includes_the_architecture_weight_decay_as_robustdarts_does(tmp_path, monkeypatch):
    monkeypatch.setattr(
        collapse,
        "supernet_hessian_eigenvalue",
        lambda model, batches, **kw: ({"hessian_eig": 2.0, "hessian_hvps": 0, "hessian_seconds": 0.0}, torch.ones(1)),
    )
    record = search(tmp_path, epochs="1", arch_weight_decay="0.25")
    assert record.epochs[0]["hessian_eig"] == pytest.approx(2.25)  # H + 0.25 I


def test_the_record_says_which_genotype_it_returns_and_the_best_by_validation(tmp_path, monkeypatch):
    scores = iter([10.0, 30.0, 20.0])
    original = DartsSearcher.score
    monkeypatch.setattr(DartsSearcher, "score", lambda self, b: {**original(self, b), "val_acc": next(scores)})
    record = search(tmp_path, epochs="3", hessian_every="0")
    m = record.metrics
    assert (
        m["returned_epoch"] == 3
        and m["returned_by"] == "last epoch"
        and record.genotype == record.epochs[2]["genotype"]
    )
    assert m["best_val_epoch"] == 2 and m["best_val_genotype"] == record.epochs[1]["genotype"]
    assert all("max_weight_mean" in e and set(e["max_weight_mean"]) == {"normal", "reduce"} for e in record.epochs)


def test_early_stop_needs_the_eigenvalue():
    with pytest.raises(Exception, match="early_stop=true needs the eigenvalue: set hessian_every to 1"):
        tiny_config("darts1", "cnn", early_stop="true", hessian_every="0")
