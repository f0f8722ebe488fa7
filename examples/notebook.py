"""nasbench from Python, as in a notebook: two searches, a table, a DataFrame, a plot. Runs in about a
minute on a CPU (the tiny preset); `python examples/notebook.py OUT_DIR`."""

import sys
from pathlib import Path

import nasbench

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs-notebook")

# Settings are Python values, checked against each setting's type.
for searcher in ("darts1", "gdas"):
    record = nasbench.search(searcher, "nb201", preset="tiny", seed=0, settings={"arch_lr": 3e-3}, out=out)
    print(searcher, record.status, record.genotype, f"true test acc {record.metrics['true_test_acc']:.2f}")

runs = nasbench.load_runs(out)  # one row per run: settings and metrics as columns
print(runs[["searcher", "seed", "train.arch_lr", "true_test_acc", "search_device_hours"]])

epochs = nasbench.load_runs(out, epochs=True)  # one row per run and epoch
print(epochs.groupby("searcher")["true_test_acc"].max())

print(nasbench.table(runs[runs.searcher == "darts1"], columns=["method", "seeds", "true_acc", "cost"]))
print(nasbench.plots(runs, out / "plots"))
