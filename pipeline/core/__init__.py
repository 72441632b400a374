"""What every stage and tool stands on: the project's paths, errors, atomic files, signals and a quick exit."""
