"""Tests of pipeline/config/: test_<module>.py for config/<module>.py."""
