"""The real pipeline, as a user runs it: its commands in processes of their own, on the real data."""
