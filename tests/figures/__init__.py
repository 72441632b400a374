"""Tests of pipeline/figures/: test_<module>.py for figures/<module>.py."""
