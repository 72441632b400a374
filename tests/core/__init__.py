"""Tests of pipeline/core/: test_<module>.py for core/<module>.py."""
