"""Ensembles of learners: average, weighted average, vote, stacking."""
