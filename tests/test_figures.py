"""`nasbench table --plots`: PNG files, one set per searcher/preset group and per space."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.figures import drawable, save_plots, series
from nasbench.plot_cells import op_colors, plot_alphas
from nasbench.report import build_report
from nasbench.spaces.cnn import CnnSpace
from tests.test_tables import make_record, save

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Two groups: darts1 (2 seeds, with eigenvalues) and random (1 seed, without)."""
    for seed in (0, 1):
        save(make_record("darts1", seed, eigs=(0.1, 0.4, 0.9)), tmp_path / "runs")
    save(make_record("random", 0, drift=0.0), tmp_path / "runs")
    return tmp_path / "runs"


def test_save_plots_writes_the_expected_pngs(runs, tmp_path):
    written = save_plots(build_report([runs]), tmp_path / "plots")
    names = sorted(path.name for path in written)
    # per run of every row: alphas and cells; per space: validation accuracy and the eigenvalue
    assert names == [
        "cnn_darts1_small_seed0_alphas.png",
        "cnn_darts1_small_seed0_cells.png",
        "cnn_darts1_small_seed1_alphas.png",
        "cnn_darts1_small_seed1_cells.png",
        "cnn_hessian_eig.png",
        "cnn_random_small_seed0_alphas.png",
        "cnn_random_small_seed0_cells.png",
        "cnn_val_acc.png",
    ]
    assert all(is_png(path) for path in written)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == names
    only = save_plots(build_report([runs]), tmp_path / "seed1", seed=1)
    assert sorted(p.name for p in only if "seed" in p.name) == [
        "cnn_darts1_small_seed1_alphas.png",
        "cnn_darts1_small_seed1_cells.png",
    ]


def test_curves_draw_the_mean_and_the_range_over_a_rows_seeds(tmp_path):
    save(make_record("darts1", 0, val_accs=(20.0, 30.0)), tmp_path)
    save(make_record("darts1", 1, val_accs=(40.0, 10.0)), tmp_path)
    (row,) = [r for r in build_report([tmp_path]).tables["cnn"] if r.source == "measured"]
    xs, mean, low, high, diverged = series(row, "val_acc")
    assert list(xs) == [1, 2] and list(mean) == [30.0, 20.0] and list(low) == [20.0, 10.0]
    assert list(high) == [40.0, 30.0] and diverged == 0


def test_alphas_need_arch_weights(tmp_path):
    record = make_record()
    for epoch in record.epochs:
        del epoch["arch_weights"]
    assert plot_alphas(record, list(CnnSpace.ops), CnnSpace.skip_ops, tmp_path / "a.png") is None
    assert not (tmp_path / "a.png").exists()


def test_skip_connections_have_one_colour_across_spaces():
    from nasbench.spaces.rnn import RnnSpace

    cnn, rnn = op_colors(list(CnnSpace.ops), CnnSpace.skip_ops), op_colors(list(RnnSpace.ops), RnnSpace.skip_ops)
    assert cnn["skip_connect"] == rnn["identity"]  # each space's own skip op, drawn alike
    assert len({cnn[op] for op in CnnSpace.ops}) == len(CnnSpace.ops)


def test_cli_table_with_plots_skips_what_no_record_has(tmp_path, capsys):
    save(make_record("darts1", 0), tmp_path / "runs")  # no eigenvalues
    assert main(["table", str(tmp_path / "runs"), "--plots", str(tmp_path / "plots")]) == 0
    assert "3 plot(s) written" in capsys.readouterr().err
    names = sorted(path.name for path in (tmp_path / "plots").iterdir())
    assert names == ["cnn_darts1_small_seed0_alphas.png", "cnn_darts1_small_seed0_cells.png", "cnn_val_acc.png"]


@pytest.mark.slow
def test_table_and_plots_of_a_real_tiny_run(tmp_path, capsys):
    run = [
        "run",
        "--searcher",
        "darts1",
        "--space",
        "cnn",
        "--preset",
        "tiny",
        "--quiet",
        "--out",
        str(tmp_path / "runs"),
    ]
    assert main(run) == 0
    assert main(["table", str(tmp_path / "runs"), "--plots", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "| DARTS (first order)" in out and "search val error" in out and "CPU" in out
    assert all(is_png(path) for path in (tmp_path / "plots").glob("*.png"))
    assert len(list((tmp_path / "plots").glob("*_alphas.png"))) == 1


def test_diverged_values_become_gaps():
    shown = drawable([10.0, 1e300, math.nan, math.inf, -2.0, 1e12])
    assert shown[0] == 10.0 and shown[4] == -2.0 and shown[5] == 1e12
    assert all(math.isnan(v) for v in shown[1:4])
