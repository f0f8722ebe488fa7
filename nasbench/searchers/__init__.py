"""Searchers: DARTS (first and second order), PC-DARTS, and random-search baselines."""
