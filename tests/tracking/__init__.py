"""Tests of pipeline/tracking/: test_<module>.py for tracking/<module>.py."""
