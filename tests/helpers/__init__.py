"""What the tests build with, by concern: plain functions and classes; the fixtures are in the conftest.py files."""
