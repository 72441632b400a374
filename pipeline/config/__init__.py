"""The configuration: conf/ composed for the stages and into params.yaml, and every setting's allowed range."""
