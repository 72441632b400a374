"""A sweep's comparison as tables: markdown for people (comparison.md), rows for tools (comparison.csv, runs.csv)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.scoring.comparison import Comparison, EnsembleResult, Run, VariantResult
from pipeline.scoring.metrics import GAP_TEST_SETS, generalisation_gap


def percent(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or np.isnan(value) else f"{100 * value:.{digits}f}%"


def interval(bounds: tuple[float | None, float | None] | None) -> str:
    if bounds is None or bounds[0] is None:
        return "n/a"
    return f"[{100 * bounds[0]:.2f}, {100 * bounds[1]:.2f}]"


def seeds_text(r: VariantResult) -> str:
    text = str(len(r.seeds))
    return f"{text} ({r.failed} failed)" if r.failed else text


def cost_text(value: float | None, scale: float, digits: int) -> str:
    return "–" if value is None else f"{value / scale:,.{digits}f}"


def p_text(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def to_markdown(comparison: Comparison) -> str:
    """One table per test set, the configured one first: which variant is best, by how much and how sure."""
    s = comparison.settings
    if comparison.best is None:
        return "(no finished variants to compare)\n"
    explained = (
        f"Best variant by mean test.{s.test_set}.{s.metric}: **{comparison.best}**. Intervals are 95%: over seeds "
        "(Student t; n/a with one seed) and over the test images (Wilson, at the mean). p: McNemar's exact test "
        "against the best on the same images, seed against seed, the largest over the seeds; a variant is worse "
        f"or better only when p < {s.alpha} in every seed; the seeds disagree when one seed is significantly better "
        "and another significantly worse. Cost: a training's FLOPs (3 x forward x images x "
        "epochs) and seconds, means over the seeds."
    )
    lines = [*textwrap.wrap(explained, 110), ""]  # one paragraph in markdown, lines that fit a terminal
    for test_set in comparison.test_sets:
        lines += [
            f"**{test_set}**",
            "",
            (
                "| variant | seeds | accuracy, mean ± sd | 95% CI, seeds | 95% CI, test images | vs best | p | verdict "
                "| TFLOP | train s | loss |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        ]
        for r in comparison.of(test_set):
            sd = "" if r.accuracy.sd is None else f" ± {100 * r.accuracy.sd:.2f}"
            diff = "–" if r.difference is None else f"{100 * r.difference:+.2f}"
            lines.append(
                f"| {r.variant} | {seeds_text(r)} | {percent(r.accuracy.mean)}{sd} | "
                f"{interval((r.accuracy.low, r.accuracy.high))} | {interval(r.test_interval)} | {diff} | "
                f"{p_text(r.p_value)} | {r.verdict} | {cost_text(r.train_flops, 1e12, 1)} | "
                f"{cost_text(r.train_seconds, 1, 0)} | {loss_text(r.loss)} |"
            )
        e = comparison.ensemble_of(test_set)
        if e is not None:
            best = comparison.of(test_set)[0].accuracy.mean
            lines += [ensemble_line(e, best), "", *textwrap.wrap(ensemble_note(e), 110)]
        lines.append("")
    return "\n".join(lines)


def loss_text(value: float | None) -> str:
    return "–" if value is None or np.isnan(value) else f"{value:.4f}"


ENSEMBLE_VERDICT = "ensemble (not one model)"


def ensemble_line(e: EnsembleResult, best: float) -> str:
    """The ensemble's row of a test set's table: its accuracy and loss beside the variants', never a verdict."""
    return (
        f"| *all {e.runs} runs averaged* | {e.runs} | {percent(e.accuracy)} | n/a | {interval(e.test_interval)} | "
        f"{100 * (e.accuracy - best):+.2f} | – | {ENSEMBLE_VERDICT} | – | – | {loss_text(e.loss)} |"
    )


def ensemble_note(e: EnsembleResult) -> str:
    single = "" if e.single_accuracy is None else f" against {percent(e.single_accuracy)} for the mean single run"
    loss = "" if e.single_loss is None else f" (loss {loss_text(e.loss)} against {loss_text(e.single_loss)})"
    return (
        f"*All {e.runs} runs averaged*: the argmax of their probabilities averaged, {percent(e.accuracy)}{single}"
        f"{loss}; an ensemble of the sweep's runs, not one model: never the best nor the champion."
    )


def to_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per variant and test set, every number in full (comparison.csv)."""
    return [
        {
            "test_set": r.test_set,
            "variant": r.variant,
            "seeds": len(r.seeds),
            "failed": r.failed,
            "accuracy_mean": r.accuracy.mean,
            "accuracy_sd": r.accuracy.sd,
            "accuracy_ci_low": r.accuracy.low,
            "accuracy_ci_high": r.accuracy.high,
            "test_ci_low": None if r.test_interval is None else r.test_interval[0],
            "test_ci_high": None if r.test_interval is None else r.test_interval[1],
            "difference_to_best": r.difference,
            "p_vs_best": r.p_value,
            "verdict": r.verdict,
            "train_flops": r.train_flops,
            "train_seconds": r.train_seconds,
            "loss_mean": r.loss,
        }
        for r in comparison.results
    ] + [ensemble_row(e, comparison.of(e.test_set)[0].accuracy.mean) for e in comparison.ensembles]


def ensemble_row(e: EnsembleResult, best: float) -> dict[str, Any]:
    """The ensemble's row of comparison.csv, with the variants' columns; `verdict` says what it is."""
    return {
        "test_set": e.test_set,
        "variant": f"all {e.runs} runs averaged",
        "seeds": e.runs,
        "failed": 0,
        "accuracy_mean": e.accuracy,
        "accuracy_sd": None,
        "accuracy_ci_low": None,
        "accuracy_ci_high": None,
        "test_ci_low": e.test_interval[0],
        "test_ci_high": e.test_interval[1],
        "difference_to_best": e.accuracy - best,
        "p_vs_best": None,
        "verdict": ENSEMBLE_VERDICT,
        "train_flops": None,
        "train_seconds": None,
        "loss_mean": e.loss,
    }


def run_rows(runs: Sequence[Run], test_sets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run: what it varied, its size and cost, accuracy per test set, and the MNIST -> EMNIST-digits
    generalisation gap where both were measured (runs.csv, and the last table of comparison.md)."""
    rows = []
    for r in runs:
        epochs = r.metrics.get("train.epochs_run")
        row = {
            "run": r.name,
            "status": r.status,
            "parameters": r.tags.get("model.parameters", ""),
            "mflop_per_image": scaled(r.metrics, "model.forward_flops", 1e6),
            "epochs": None if epochs is None else int(epochs),
            "train_tflop": scaled(r.metrics, "train.flops", 1e12),
            "train_seconds": r.metrics.get("train.train_seconds"),
        }
        for name in test_sets:
            row[f"{name}_accuracy"] = r.metrics.get(f"test.{name}.accuracy")
        if set(GAP_TEST_SETS) <= set(test_sets):
            row["generalisation_gap"] = generalisation_gap({name: row[f"{name}_accuracy"] for name in test_sets})
        rows.append(row)
    return rows


def scaled(metrics: Mapping[str, float], key: str, unit: float) -> float | None:
    """A metric in `unit`s (1e6: millions), None where the run did not log it."""
    return metrics[key] / unit if key in metrics else None


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if column.endswith(("accuracy", "gap")) else f"{value:.1f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(no runs)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(c, r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"
