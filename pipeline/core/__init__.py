"""Under everything: paths, errors, atomic files, signals, exits, CPU flags, metric direction, lazy imports, workers."""
