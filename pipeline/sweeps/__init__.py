"""Sweeps: a Hydra multirun as a parent MLflow run with a child per job, and the comparison of its variants."""
