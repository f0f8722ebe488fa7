"""Evaluation: train a genotype's discrete network from scratch and test it (``python -m nasbench eval``)."""
