"""What every stage and tool stands on: paths, errors, atomic files, signals, a quick exit, the CPU's flags."""
