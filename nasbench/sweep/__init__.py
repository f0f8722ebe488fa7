"""``nasbench sweep``: a grid of searchers x spaces x seeds x settings, run locally, on Ray or on SLURM."""
