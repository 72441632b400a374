"""The configuration: conf/ composed into params.yaml, and the allowed range of every setting."""
