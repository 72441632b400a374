"""Tests of pipeline/modeling/: test_<module>.py for modeling/<module>.py."""
