"""Where runs and models live: MLflow's runs and registry, and whether the tracking server and DVC remote answer."""
