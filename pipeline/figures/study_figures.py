"""Optuna's own figures of a study (its matplotlib ones: no plotly here), as PNG files for the search's parent run."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt
import optuna
from optuna.trial import TrialState

from pipeline.core.files import atomic_path


def study_figures(study: optuna.Study, folder: Path) -> tuple[dict[str, Path], list[str]]:
    """history.png (each trial's value and the best so far), importances.png (how much each searched setting
    mattered: needs two completed trials) and parallel_coordinates.png; and a note for each figure not drawn."""
    from optuna.visualization import matplotlib as figures

    completed = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    drawn, notes = {}, []
    wanted = {
        "history": figures.plot_optimization_history,
        "importances": figures.plot_param_importances,
        "parallel_coordinates": figures.plot_parallel_coordinate,
    }
    for name, draw in wanted.items():
        if completed < (2 if name == "importances" else 1):
            notes.append(f"{name}: needs {2 if name == 'importances' else 1} completed trials, has {completed}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = draw(study)
        figure = axes.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        with atomic_path(folder / f"{name}.png") as out:
            figure.savefig(out, dpi=100, format="png")
        plt.close(figure)
        drawn[name] = folder / f"{name}.png"
    return drawn, notes
