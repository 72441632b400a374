"""The report stage: each step on inputs worked out by hand or on the tiny data, and report(cfg) in-process once on
a tiny folder that evaluate has scored (an untrained model: no training)."""

from __future__ import annotations

import csv
import io
import re
import time
from concurrent.futures import Executor, Future
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pytest
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf

from pipeline.core.files import read_json
from pipeline.data.datasets import Dataset, all_rows
from pipeline.evaluate import evaluate
from pipeline.figures.report_pages import (
    Page,
    correct_sample,
    generalisation_note,
    headline_table,
    label_issue_note,
    pair_examples,
    write_misclassified_pdf,
    write_summary_pdf,
)
from pipeline.label_issues import find_issues
from pipeline.report import (
    Section,
    copy_label_issues,
    log_report,
    misclassified_pdf,
    pdf_name,
    prediction_pages,
    read_label_issue_counts,
    read_predictions,
    read_training,
    report,
    report_test_set,
    run_pages,
    summary_page,
    write_plot_data,
    write_tables,
)
from pipeline.scoring.predictions import Predictions
from pipeline.scoring.tables import history_rows, per_class_rows
from pipeline.tracking import store
from tests.helpers.configs import tiny_config
from tests.helpers.stage_outputs import TEST_SET_FILES, read_scores, start_run_ref, write_untrained_run
from tests.helpers.synthetic import tiny_workdir

PNG, PDF = b"\x89PNG\r\n\x1a\n", b"%PDF-"
RUN_FIGURES = ["curves.png", "samples.png", "augmented.png", "class_distribution.png"]


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", path.read_bytes()))


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def artifact_files(client: mlflow.MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    files = set()
    for a in client.list_artifacts(run_id, path):
        files |= artifact_files(client, run_id, a.path) if a.is_dir else {a.path}
    return files


def hand_made() -> Predictions:
    """Five images of classes a, b, c, worked out by hand:

    image  true  probabilities     predicted  confidence
    0      a     0.7  0.2  0.1     a          0.7
    1      a     0.3  0.6  0.1     b (wrong)  0.6
    2      b     0.1  0.8  0.1     b          0.8
    3      c     0.1  0.9  0.0     b (wrong)  0.9
    4      c     0.2  0.7  0.1     b (wrong)  0.7
    """
    images = np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), dtype=np.uint8)
    ds = Dataset(
        images[:0],
        np.zeros(0, np.uint8),
        images,
        np.array([0, 0, 1, 2, 2], np.uint8),
        ("a", "b", "c"),
        "hand",
        all_rows(0),
        all_rows(5),
        "",
        "hand-images",
    )
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.1, 0.9, 0.0], [0.2, 0.7, 0.1]])
    return Predictions.of("emnist_digits", ds, probs, ds.y_test, confused_pairs=6)


class Deferred(Executor):
    """Keeps what it is given to run instead of running it: the misclassification PDFs are drawn by report()."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.calls.append((fn, *args))
        return Future()


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, empty_store) -> tuple[DictConfig, str]:
    """A working folder (the current directory) as evaluate leaves it, shared by this module's tests: the `tiny`
    data, an untrained model, its run, its predictions and metrics. Returns the fast config and the run's id."""
    folder = tmp_path_factory.mktemp("evaluated")
    with pytest.MonkeyPatch.context() as mp, tiny_workdir(folder, mp, empty_store):
        cfg = tiny_config(["report.confused_pairs=2"])  # two rows of pairs to draw, not six: a second saved
        run_id = write_untrained_run(cfg)
        evaluate(cfg)
        find_issues(cfg)
        yield cfg, run_id


@pytest.fixture(scope="module")
def reported(evaluated) -> str:
    """The evaluated folder after report(cfg), run once for the module (it starts a process for the PDFs)."""
    cfg, run_id = evaluated
    report(cfg)
    return run_id


def test_pdf_name_names_other_test_sets_by_their_family():
    assert pdf_name("mnist", "mnist") == "misclassified.pdf"
    assert pdf_name("emnist_digits", "mnist") == "misclassified_EMNIST.pdf"


def test_history_rows_one_per_epoch():
    rows = history_rows({"loss": [2.0, 1.0], "accuracy": [0.5, 0.75]})
    assert rows == [{"epoch": 1, "loss": 2.0, "accuracy": 0.5}, {"epoch": 2, "loss": 1.0, "accuracy": 0.75}]


def test_headline_table_and_generalisation_gap():
    scores = {
        "mnist": {"images": 10000, "accuracy": 0.99, "loss": 0.03, "macro_f1": 0.989, "ece": 0.004},
        "emnist_digits": {"images": 40000, "accuracy": 0.95, "loss": 0.2, "macro_f1": 0.949, "ece": 0.02},
    }
    table = headline_table(scores)
    assert table[0] == ["test set", "images", "accuracy", "loss", "macro F1", "ECE"]
    assert table[2] == ["EMNIST digits", "40,000", "95.00%", "0.2000", "0.9490", "0.0200"]
    assert generalisation_note(scores) == "Generalisation gap MNIST → EMNIST digits: 99.00% − 95.00% = +4.00 points"
    assert generalisation_note({"mnist": scores["mnist"]}) is None
    with_top5 = headline_table({"emnist_balanced": {**scores["mnist"], "top5_accuracy": 0.999}})
    assert with_top5[0][-1] == "top-5" and with_top5[1] == ["EMNIST 47 classes", *table[1][1:], "99.90%"]


def test_predictions_of_hand_made_probabilities():
    p = hand_made()
    np.testing.assert_array_equal(p.pred, [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(p.cm, [[1, 1, 0], [0, 1, 0], [0, 2, 0]])
    np.testing.assert_array_equal(p.mistakes, [3, 4, 1])  # most confident mistake first
    assert p.pairs == [(2, 1, 2), (0, 1, 1)]
    assert p.title == "EMNIST digits" and p.class_names == ("a", "b", "c")


def test_pair_examples_and_correct_sample():
    p = hand_made()
    assert [list(e) for e in pair_examples(p)] == [[3, 4], [1]]
    assert sorted(correct_sample(p, 8, seed=0)) == [0, 2]
    assert len(correct_sample(p, 1, seed=0)) == 1


def test_write_tables_and_plot_data(tmp_path):
    p = hand_made()
    per_class = write_tables(p, tmp_path / "reports" / "emnist_digits")
    assert per_class == per_class_rows(p.cm, p.class_names)
    folder = tmp_path / "reports" / "emnist_digits"
    assert [r["class"] for r in csv_rows(folder / "per_class.csv")] == ["a", "b", "c"]
    assert (folder / "confused_pairs.csv").read_text() == "true,predicted,count\nc,b,2\na,b,1\n"
    assert "   macro avg" in (folder / "classification_report.txt").read_text()

    write_plot_data(p, per_class, tmp_path / "plots")
    assert (tmp_path / "plots/per_class/emnist_digits.csv").read_text() == "class,accuracy\na,0.5\nb,1.0\nc,0.0\n"
    confusion = (tmp_path / "plots/confusion/emnist_digits.csv").read_text()
    assert confusion == "actual,predicted\na,a\na,b\nb,b\nc,b\nc,b\n"


def test_prediction_pages_in_summary_order(tmp_path):
    pages = prediction_pages(hand_made(), tmp_path, OmegaConf.create({"seed": 0, "report": {"grid_size": 8}}))
    assert [page.path for page in pages] == [tmp_path / f for f in TEST_SET_FILES[:5]]
    fig = pages[2].draw()  # the most confused pairs: a row per pair
    assert isinstance(fig, Figure) and fig.get_suptitle() == "EMNIST digits: most confused pairs (true → predicted)"
    plt.close(fig)


def test_misclassified_pdf_holds_only_the_shown_mistakes(tmp_path):
    p = hand_made()
    job = misclassified_pdf(
        p, tmp_path / "m.pdf", OmegaConf.create({"report": {"max_misclassified": 2, "per_page": 4}}), "run"
    )
    np.testing.assert_array_equal(job.images, p.images[[3, 4]])
    np.testing.assert_array_equal(job.y, [2, 2])
    assert job.mistakes == 3 and job.per_page == 4 and job.title == "Misclassified: run"
    assert "3 of 5 images misclassified — accuracy 40.00%" in job.summary
    assert "Showing the 2 most confident mistakes" in job.summary
    assert write_misclassified_pdf(job) == f"report: wrote {tmp_path / 'm.pdf'} (2 of 3 mistakes)"
    assert (tmp_path / "m.pdf").read_bytes()[:5] == PDF and pdf_pages(tmp_path / "m.pdf") == 1


def test_write_summary_pdf_puts_the_first_page_before_every_figure(tmp_path):
    def titled(title: str) -> Figure:
        fig = plt.figure(figsize=(2, 2))
        fig.suptitle(title)
        return fig

    pages = [Page(tmp_path / "a.png", lambda: titled("a")), Page(tmp_path / "b" / "b.png", lambda: titled("b"))]
    write_summary_pdf(tmp_path / "summary.pdf", titled("summary"), pages)
    assert pdf_pages(tmp_path / "summary.pdf") == 3
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG and (tmp_path / "b" / "b.png").read_bytes()[:8] == PNG
    assert not plt.get_fignums()


def test_read_training(evaluated):
    cfg, _ = evaluated
    training = read_training(cfg)
    assert training.name == "mnist" and len(training.labels) == 300
    assert training.record["class_names"] == list(training.dataset.class_names)
    assert training.augmented["augmented"].shape == (3, 10, 28, 28)


def test_run_pages_in_summary_order(evaluated):
    cfg, _ = evaluated
    pages = run_pages(read_training(cfg), Path("somewhere"), cfg)
    assert [page.path for page in pages] == [Path("somewhere") / f for f in RUN_FIGURES]
    fig = pages[3].draw()
    assert fig.axes[0].get_title() == "Training set class distribution (MNIST, 300 images)"
    plt.close(fig)


def test_read_predictions(evaluated):
    cfg, _ = evaluated
    training = read_training(cfg)
    own = read_predictions("mnist", training, cfg)
    assert own.dataset is training.dataset  # the training set's own test set is not read twice
    other = read_predictions("emnist_digits", training, cfg)
    assert other.images.shape == (100, 28, 28) and other.cm.sum() == 100
    assert len(other.pairs) <= cfg.report.confused_pairs
    missing = tiny_config(["paths.predictions=nowhere"])
    with pytest.raises(FileNotFoundError, match=r"nowhere/mnist\.npz: no predictions .* run the evaluate stage"):
        read_predictions("mnist", training, missing)


@pytest.mark.usefixtures("evaluated")
def test_report_test_set_writes_its_files_and_returns_its_section(tmp_path):
    out = tiny_config([f"paths.reports={tmp_path}/reports", f"paths.plots={tmp_path}/plots"])
    writer = Deferred()
    flagged = read_label_issue_counts(out)
    section = report_test_set("emnist_digits", read_training(out), flagged, out, writer, "the run")
    assert section.label_issues == flagged["emnist_digits"]
    # The scores on the summary page are the ones evaluate wrote.
    assert section.scores == read_scores("metrics")["emnist_digits"]
    assert section.source == "synthetic, 10 classes" and len(section.per_class) == 10
    assert [page.path.name for page in section.pages] == TEST_SET_FILES[:5]
    assert sorted(p.name for p in (tmp_path / "reports" / "emnist_digits").iterdir()) == sorted(TEST_SET_FILES[5:])
    assert (tmp_path / "plots/per_class/emnist_digits.csv").is_file()
    assert len(csv_rows(tmp_path / "plots/confusion/emnist_digits.csv")) == 100
    [(fn, job)] = writer.calls
    assert fn is write_misclassified_pdf and job.path == tmp_path / "reports" / "misclassified_EMNIST.pdf"


def test_summary_page_shows_the_gap_and_each_test_sets_source(evaluated):
    cfg, _ = evaluated
    scores = read_scores("metrics")
    flagged = read_label_issue_counts(cfg)
    sections = [
        Section(name, f"from {name}", scores[name], [], [], flagged[name], Future())
        for name in ("mnist", "emnist_digits")
    ]
    fig = summary_page("the run", read_training(cfg), sections, cfg)
    texts = [t.get_text() for t in fig.texts]
    plt.close(fig)
    assert texts[0] == "the run" and "compact · augment strong · trained on MNIST (300 images" in texts[1]
    assert texts[2].split("\n") == [
        generalisation_note(scores),
        "MNIST: from mnist",
        "EMNIST digits: from emnist_digits",
        *label_issue_note("MNIST", flagged["mnist"]).split("\n"),
        *label_issue_note("EMNIST digits", flagged["emnist_digits"]).split("\n"),
    ]


def test_log_report_logs_the_files_and_the_per_class_tables(evaluated, tmp_path):
    cfg, _ = evaluated
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "per_class.csv").write_text("class\n")
    rows = [{"class": "a", "recall": 0.5}, {"class": "b", "recall": 1.0}]
    store.connect(cfg.tracking)
    with mlflow.start_run() as run:
        log_report(tmp_path, [Section("mnist", "", {}, [], rows, {}, Future())])
    client = mlflow.MlflowClient()
    assert artifact_files(client, run.info.run_id) == {"reports/mnist/per_class.csv", "tables/per_class_mnist.json"}
    table = read_json(client.download_artifacts(run.info.run_id, "tables/per_class_mnist.json"))
    assert table["columns"] == ["class", "recall"] and table["data"] == [["a", 0.5], ["b", 1.0]]


def test_label_issue_note_says_it_is_not_a_corrected_accuracy():
    counts = {"images": 10_000, "flagged": 30, "errors": 45, "flagged_errors": 21, "accuracy_excluding_flagged": 0.9976,
              "queue": 100, "queue_errors": 40}  # fmt: skip
    assert label_issue_note("MNIST", counts) == (
        "MNIST: 30 labels flagged as likely wrong, 21 of its 45 errors; accuracy on the other 9,970: 99.76% "
        "(not a corrected accuracy)\nMNIST's review queue: the 100 labels most likely wrong, 40 of them among its errors "
        "(label_issues.pdf)"
    )


def test_label_issues_are_copied_beside_the_test_set_s_files_or_their_absence_said(tmp_path):
    (tmp_path / "found").mkdir()
    (tmp_path / "found" / "mnist.csv").write_text("index\n")
    (tmp_path / "found" / "mnist.pdf").write_bytes(b"%PDF-")
    copy_label_issues("mnist", tmp_path / "found", tmp_path / "reports" / "mnist")
    assert (tmp_path / "reports" / "mnist" / "label_issues.csv").read_text() == "index\n"
    assert (tmp_path / "reports" / "mnist" / "label_issues.pdf").read_bytes() == b"%PDF-"
    with pytest.raises(FileNotFoundError, match=r"emnist_digits.csv: not found — run the label_issues stage"):
        copy_label_issues("emnist_digits", tmp_path / "found", tmp_path / "reports" / "emnist_digits")


def test_report_without_label_issue_counts_says_which_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"label_issues.json: not found — run the label_issues stage"):
        read_label_issue_counts(tiny_config([f"paths.metrics={tmp_path}"]))


@pytest.mark.slow  # report(cfg) starts a process for the PDFs (10 s here): in the full suite only; the fast
# subset covers its steps in-process above
def test_report_writes_every_file_and_logs_them_to_the_run(evaluated, reported):
    cfg, run_id = evaluated
    reports = Path("reports")
    for name in RUN_FIGURES:
        assert (reports / name).read_bytes()[:8] == PNG, name
    for test_set in cfg.data.test_sets:
        for name in TEST_SET_FILES:
            data = (reports / test_set / name).read_bytes()
            kind = name.rpartition(".")[2]
            assert {"png": data[:8] == PNG, "pdf": data[:5] == PDF}.get(kind, bool(data)), f"{test_set}/{name}"
        assert len(csv_rows(Path("plots/confusion") / f"{test_set}.csv")) == 100
        assert len(csv_rows(Path("plots/per_class") / f"{test_set}.csv")) == 10
    assert len(csv_rows(Path("plots/history.csv"))) == 2
    # The summary, then 4 figures of the run and 5 per test set.
    assert pdf_pages(reports / "summary.pdf") == 1 + 4 + 5 * 2
    for pdf in ("misclassified.pdf", "misclassified_EMNIST.pdf"):
        assert (reports / pdf).read_bytes()[:5] == PDF, pdf

    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert {"test.mnist.accuracy", "test.emnist_digits.macro_f1"} <= set(run.data.metrics)
    written = {f"reports/{p.relative_to(reports).as_posix()}" for p in reports.rglob("*") if p.is_file()}
    tables = {f"tables/per_class_{test_set}.json" for test_set in cfg.data.test_sets}
    predictions = {f"predictions/{test_set}.npz" for test_set in cfg.data.test_sets}  # evaluate's, before report
    found = {f"label_issues/{t}.{ext}" for t in cfg.data.test_sets for ext in ("csv", "pdf")} | {
        "metrics/label_issues.json"  # the label_issues stage's, before report
    }
    assert artifact_files(mlflow.MlflowClient(), run_id) == written | tables | predictions | found
    assert len(written) == 1 + 2 + len(RUN_FIGURES) + len(TEST_SET_FILES) * 2


def test_a_failed_report_marks_the_run_failed(evaluated):
    cfg, _ = evaluated
    failing = tiny_config(
        [
            "paths.models=failing",
            "paths.predictions=nowhere",
            "paths.reports=failing/reports",
            "paths.plots=failing/plots",
        ]
    )
    Path("failing").mkdir()
    for name in ("history.json", "augmented.npz"):
        (Path("failing") / name).write_bytes((Path(cfg.paths.models) / name).read_bytes())
    run_id = start_run_ref(Path("failing"), failing)
    with pytest.raises(FileNotFoundError, match="no predictions"):
        report(failing)
    assert mlflow.get_run(run_id).info.status == "FAILED"
    assert not Path("failing/reports").exists()


def test_the_same_pdf_drawn_twice_is_the_same_file(tmp_path):
    """No creation date in it: a report run again with nothing changed gives DVC the same output."""
    p = hand_made()
    cfg = OmegaConf.create({"report": {"max_misclassified": 2, "per_page": 4}})
    write_misclassified_pdf(misclassified_pdf(p, tmp_path / "a.pdf", cfg, "run"))
    time.sleep(1.1)  # a creation date would differ by now: it is kept to the second
    write_misclassified_pdf(misclassified_pdf(p, tmp_path / "b.pdf", cfg, "run"))
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
