"""The repository's own consistency: its documentation, the code's layout, dvc.yaml's dependencies, params.yaml."""
