"""Tests of pipeline/data/: test_<module>.py for data/<module>.py."""
