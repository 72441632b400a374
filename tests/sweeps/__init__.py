"""Tests of pipeline/sweeps/: test_<module>.py for sweeps/<module>.py."""
