"""Under everything: paths, errors, atomic files, signals, a quick exit, CPU flags, metric direction, lazy imports."""
