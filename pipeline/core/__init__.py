"""What stages and tools stand on: paths, errors, atomic files, signals, a quick exit, CPU flags, metric direction."""
