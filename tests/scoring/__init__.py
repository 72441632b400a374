"""Tests of pipeline/scoring/: test_<module>.py for scoring/<module>.py."""
