"""The tests, a package so that they import what they share from tests.helpers (docs/development.md#tests)."""
