"""The Python API (``nasbench.search``, ``evaluate``, ``load_runs``, ``table``, ``plots``) as a notebook uses it."""

import pytest

import nasbench
from nasbench.errors import UserError


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    records = [
        nasbench.search(
            "darts1", "nb201", preset="tiny", seed=seed, settings={"arch_lr": 3e-3, "hessian_every": 0}, out=out
        )  # fmt: skip
        for seed in (0, 1)
    ]
    return out, records


def test_search_takes_typed_settings_and_returns_the_record(two_runs):
    _, records = two_runs
    assert [r.status for r in records] == ["completed", "completed"]
    assert records[0].config["train"]["arch_lr"] == 3e-3 and records[0].config["train"]["hessian_every"] == 0
    assert records[0].genotype_cells["cell"]["edges"][0][1:] == [0, 1]  # the genotype as JSON: [op, src, dst]


def test_settings_of_the_wrong_type_name_the_key(tmp_path):
    with pytest.raises(UserError, match="arch_lr='fast'.*not a valid float|arch_lr"):
        nasbench.search("darts1", "nb201", preset="tiny", settings={"arch_lr": "fast"}, out=tmp_path)
    with pytest.raises(UserError, match="setting hessian_every=1.5: a float where a int is expected"):
        nasbench.search("darts1", "nb201", preset="tiny", settings={"hessian_every": 1.5}, out=tmp_path)
    assert not list(tmp_path.rglob("record.json"))


def test_load_runs_gives_one_row_per_run_or_per_epoch(two_runs):
    out, records = two_runs
    runs = nasbench.load_runs(out)
    assert len(runs) == 2 and set(runs.seed) == {0, 1}
    assert (runs["train.arch_lr"] == 3e-3).all() and "true_test_acc" in runs and "searcher.derive" in runs
    assert runs.set_index("seed").loc[0, "true_test_acc"] == records[0].metrics["true_test_acc"]
    epochs = nasbench.load_runs(out, epochs=True)
    assert len(epochs) == sum(len(r.epochs) for r in records) and {"epoch", "train_loss", "true_test_acc"} <= set(
        epochs
    )


def test_table_and_plots_from_a_filtered_frame(two_runs, tmp_path):
    out, _ = two_runs
    runs = nasbench.load_runs(out)
    text = nasbench.table(runs[runs.seed == 0], columns=["method", "seeds", "true_acc"])
    line = next(line for line in text.splitlines() if "measured" in line or "DARTS (first order) " in line)
    assert "| 1 " in line  # only the seed kept in the frame
    assert "| 2 " in nasbench.table(out, columns=["method", "seeds"])
    written = nasbench.plots(runs, tmp_path / "plots")
    assert any(p.name == "nb201_study.png" for p in written)


def test_evaluate_a_published_genotype(tmp_path):
    record = nasbench.evaluate("DARTS_V2", space="cnn", preset="tiny", out=tmp_path, settings={"epochs": 1})
    assert record.status == "completed" and record.metrics["test_acc"] >= 0 and record.config["eval"]["epochs"] == 1


def test_importing_nasbench_is_light():
    import subprocess
    import sys

    code = "import sys, nasbench; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_no_submodule_shadows_a_function_of_the_api():
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(nasbench.__path__, "nasbench."):
        importlib.import_module(module.name)  # importing nasbench.X sets the attribute nasbench.X
    assert all(callable(getattr(nasbench, name)) for name in nasbench.__all__ if name != "__version__")
