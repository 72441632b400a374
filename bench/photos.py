"""Your own photos: MNIST test digits rendered as phone photos of ink on paper, read back through predict.

Each condition renders the same digits (MNIST's test set, a seeded sample) as a photo would show them — a page, the
ink on it, its light, the camera's noise and JPEG — and runs `python -m pipeline.predict FOLDER --json` on them with
the trained model, exactly as a user would. A digit that predict refuses counts as wrong and is also counted in its
own column. Blank pages (paper, light and noise but no digit) are rendered too: every one should be refused.

    .venv/bin/python bench/photos.py [--digits 1000] [--code DIR] [--model models/model.keras] [--figure PNG]

`--code DIR` runs the predict of another checkout (its .venv or this one's), so that the preprocessing before a
change is measured on the same renderings in the same run: `git worktree add /tmp/before <commit>`, then
`--code /tmp/before`. `--figure` draws a few renderings of each condition beside the 28x28 input predict made of
them (`--save`). The probabilities of every answer are written to `--answers` (JSON), from which the confidence
threshold of predict's mark is chosen (`--threshold-table`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe

Photo = Callable[[np.ndarray, np.random.Generator], Image.Image]


def upscale(digit: np.ndarray, factor: float) -> np.ndarray:
    """An MNIST digit (white on black, 0-255) as ink coverage 0-1 at `factor` times its size, smoothly."""
    size = max(1, round(28 * factor))
    big = Image.fromarray(digit.astype(np.float32) / 255.0, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big), 0.0, 1.0)


def place(coverage: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, jitter: float = 0.1) -> np.ndarray:
    """The digit's coverage on a page of `shape`, near the middle (off by up to `jitter` of the page)."""
    page = np.zeros(shape, np.float32)
    h, w = coverage.shape
    top = int(np.clip((shape[0] - h) / 2 + rng.uniform(-jitter, jitter) * shape[0], 0, shape[0] - h))
    left = int(np.clip((shape[1] - w) / 2 + rng.uniform(-jitter, jitter) * shape[1], 0, shape[1] - w))
    page[top : top + h, left : left + w] = coverage
    return page


def ink_on(paper: np.ndarray, ink: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Ink of colour `ink` laid on `paper` (H x W x 3, or H x W) where `coverage` says, 0-255 floats."""
    a = coverage[..., None] if paper.ndim == 3 else coverage
    return paper * (1 - a) + np.asarray(ink, np.float32) * a


def to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def gradient(shape: tuple[int, int], low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """Light that falls across the page from `low` to `high` times its full strength, in a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.indices(shape, dtype=np.float32)
    t = np.cos(angle) * cols / shape[1] + np.sin(angle) * rows / shape[0]
    t = (t - t.min()) / (t.max() - t.min())
    return low + (high - low) * t


def shadow(shape: tuple[int, int], depth: float, rng: np.random.Generator, soft: float = 3.0) -> np.ndarray:
    """A shadow's edge across the page (a hand or a phone between the light and the page): a half-plane darker by
    `depth`, its edge through the middle third of the page, softened over a few pixels."""
    angle = rng.uniform(0, 2 * np.pi)
    cy, cx = (rng.uniform(1 / 3, 2 / 3) * n for n in shape)
    rows, cols = np.indices(shape, dtype=np.float32)
    distance = np.cos(angle) * (cols - cx) + np.sin(angle) * (rows - cy)
    inside = 1 / (1 + np.exp(-distance / soft))
    return 1 - depth * inside


def noisy(pixels: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return pixels + rng.normal(0, sigma, pixels.shape)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).copy()


PAGE = (160, 160)


def clean(digit, rng):
    return to_image(ink_on(np.full(PAGE, 255.0), 0, place(upscale(digit, 4), PAGE, rng)))


def grey_paper(digit, rng):
    paper, ink = rng.uniform(140, 210), rng.uniform(20, 70)
    return to_image(noisy(ink_on(np.full(PAGE, paper), ink, place(upscale(digit, 4), PAGE, rng)), 3, rng))


def uneven_light(digit, rng):
    page = ink_on(np.full(PAGE, 240.0), 25, place(upscale(digit, 4), PAGE, rng))
    return to_image(noisy(page * gradient(PAGE, 0.5, 1.0, rng), 3, rng))


def shadow_edge(digit, rng):
    page = ink_on(np.full(PAGE, 235.0), 25, place(upscale(digit, 4), PAGE, rng))
    return to_image(noisy(page * shadow(PAGE, rng.uniform(0.35, 0.55), rng), 3, rng))


def pencil(digit, rng):
    paper = rng.uniform(195, 215)
    return to_image(
        noisy(ink_on(np.full(PAGE, paper), paper - rng.uniform(55, 75), place(upscale(digit, 4), PAGE, rng)), 4, rng)
    )


def ruled_paper(digit, rng):
    """Notebook paper: pale blue lines every 30 pixels, a red margin line, the digit written across a line."""
    paper = np.full((*PAGE, 3), (248.0, 247.0, 240.0))
    start = int(rng.integers(0, 30))
    for row in range(start, PAGE[0], 30):
        paper[row : row + 2] = (150, 180, 225)
    margin = int(rng.integers(10, 30))
    paper[:, margin : margin + 2] = (225, 110, 110)
    ink = (20, 30, 90) if rng.random() < 0.5 else (30, 30, 30)
    return to_image(noisy(ink_on(paper, ink, place(upscale(digit, 4), PAGE, rng)), 3, rng))


COLOURS = [  # (ink, paper): ballpoint and felt pens on coloured notepaper
    ((30, 60, 170), (245, 235, 180)),  # blue on yellowish
    ((190, 30, 30), (215, 240, 210)),  # red on pale green
    ((20, 120, 50), (250, 215, 225)),  # green on pink
    ((110, 40, 140), (205, 225, 245)),  # purple on pale blue
    ((40, 40, 40), (240, 200, 150)),  # black on orange
]


def coloured(digit, rng):
    ink, paper = COLOURS[int(rng.integers(len(COLOURS)))]
    page = ink_on(np.full((*PAGE, 3), paper, np.float32), ink, place(upscale(digit, 4), PAGE, rng))
    return to_image(noisy(page, 3, rng))


def noise_jpeg(digit, rng):
    page = ink_on(np.full(PAGE, rng.uniform(190, 225)), 40, place(upscale(digit, 4), PAGE, rng))
    return jpeg(to_image(noisy(page, 12, rng)), 60)


def blurred(digit, rng):
    page = to_image(ink_on(np.full(PAGE, 250.0), 20, place(upscale(digit, 4), PAGE, rng)))
    return page.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3.0)))


LARGE = (360, 480)


def small_on_large(digit, rng):
    """A digit about 12% of a 480x360 page's height (40 of 360 pixels), anywhere on it."""
    page = ink_on(np.full(LARGE, 245.0), 20, place(upscale(digit, 2), LARGE, rng, jitter=0.35))
    return to_image(noisy(page, 3, rng))


def rotated(digit, rng):
    page = to_image(ink_on(np.full(PAGE, 245.0), 20, place(upscale(digit, 4), PAGE, rng)))
    return page.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, fillcolor=245)


def table_margin(digit, rng):
    """The photo takes in the table beside the page: a dark strip along one or two edges."""
    page = ink_on(np.full((*PAGE, 3), (242.0, 240.0, 235.0)), (25, 25, 25), place(upscale(digit, 4), PAGE, rng, 0.05))
    for _ in range(int(rng.integers(1, 3))):
        width = int(rng.uniform(0.08, 0.18) * PAGE[0])
        edge = int(rng.integers(4))
        table = np.array((90, 60, 40), np.float32) * rng.uniform(0.7, 1.2)
        if edge == 0:
            page[:width] = table
        elif edge == 1:
            page[-width:] = table
        elif edge == 2:
            page[:, :width] = table
        else:
            page[:, -width:] = table
    return to_image(noisy(page, 3, rng))


CONDITIONS: dict[str, tuple[str, Photo]] = {
    "clean": ("black ink on white paper", clean),
    "grey_paper": ("grey paper (140-210), ink 20-70", grey_paper),
    "uneven_light": ("light falling across the page (half to full)", uneven_light),
    "shadow": ("a shadow's edge across the page (35-55% darker)", shadow_edge),
    "pencil": ("pencil: paper ~205, ink 55-75 darker", pencil),
    "ruled": ("ruled notebook paper, red margin line", ruled_paper),
    "coloured": ("coloured ink on coloured paper", coloured),
    "noise_jpeg": ("grey paper, noise (sigma 12), JPEG quality 60", noise_jpeg),
    "blur": ("blurred (Gaussian, sigma 1.5-3)", blurred),
    "small": ("a small digit on a 480x360 page", small_on_large),
    "rotated": ("the page rotated by up to 10 degrees", rotated),
    "table": ("a strip of table along one or two edges", table_margin),
}


def blank(rng: np.random.Generator) -> Image.Image:
    """A page with no digit, under one of the conditions' papers and lights."""
    kind = int(rng.integers(4))
    paper = np.full(PAGE, rng.uniform(140, 240))
    if kind == 1:
        paper = paper * gradient(PAGE, 0.5, 1.0, rng)
    elif kind == 2:
        paper = paper * shadow(PAGE, rng.uniform(0.35, 0.55), rng)
    image = to_image(noisy(paper, 3 if kind != 3 else 12, rng))
    return jpeg(image, 60) if kind == 3 else image


def render(conditions: list[str], digits: np.ndarray, folder: Path, seed: int, blanks: int) -> None:
    """Each condition's photos in folder/<condition>/<i>.png (or .jpg after JPEG), the same digits in each."""
    for name in conditions:
        out = folder / name
        out.mkdir(parents=True)
        rng = np.random.default_rng([seed, len(name), sum(map(ord, name))])
        for i, digit in enumerate(digits):
            CONDITIONS[name][1](digit, rng).save(out / f"{i:05d}.png")
    if blanks:
        out = folder / "blank"
        out.mkdir()
        rng = np.random.default_rng([seed, 0])
        for i in range(blanks):
            blank(rng).save(out / f"{i:05d}.png")


def predict(code: Path, folder: Path, model: Path) -> tuple[dict[int, dict], int]:
    """predict's answers by image number, and how many images it refused (one stderr line each)."""
    python = code / ".venv/bin/python"
    python = python if python.exists() else Path(sys.executable)
    cmd = [str(python), "-m", "pipeline.predict", str(folder), "--json", "--top", "10", "--model", str(model)]
    done = subprocess.run(cmd, check=False, cwd=code, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"predict failed ({done.returncode}) on {folder}:\n{done.stderr}")
    answers = {}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        answers[int(Path(row["file"]).stem)] = row
    refused = len(list(folder.iterdir())) - len(answers)
    return answers, refused


def score(answers: dict[int, dict], labels: np.ndarray) -> list[dict]:
    """Per image: the true label, the answer (None when refused), its probability, whether it is right."""
    rows = []
    for i, label in enumerate(labels):
        top = answers.get(i, {}).get("top")
        guess, p = (top[0]["class"], top[0]["probability"]) if top else (None, None)
        rows.append({"image": i, "label": str(label), "answer": guess, "probability": p, "right": guess == str(label)})
    return rows


def threshold_table(rows: list[dict], thresholds: list[float]) -> list[str]:
    """For marking answers below a probability: how many answers it marks, and how many of the wrong ones."""
    answered = [r for r in rows if r["answer"] is not None]
    wrong = sum(not r["right"] for r in answered)
    lines = ["| mark below | answers marked | wrong answers marked | right among unmarked |", "|---:|---:|---:|---:|"]
    for t in thresholds:
        marked = [r for r in answered if r["probability"] < t]
        unmarked = [r for r in answered if r["probability"] >= t]
        caught = sum(not r["right"] for r in marked)
        right = sum(r["right"] for r in unmarked) / max(1, len(unmarked))
        lines.append(
            f"| {t:.0%} | {len(marked) / len(answered):.1%} ({len(marked)}) | {caught} of {wrong} | {right:.2%} |"
        )
    return lines


def figure(folder: Path, conditions: list[str], path: Path, columns: int = 6) -> None:
    """Rows of conditions: a few photos, each beside the 28x28 input this checkout's predict makes of it."""
    import matplotlib

    from pipeline.data.image_files import load_image

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(conditions), 2 * columns, figsize=(2 * columns * 0.9, len(conditions) * 1.0))
    for r, name in enumerate(conditions):
        photos = sorted((folder / name).iterdir())[:columns]
        for c, photo in enumerate(photos):
            axes[r, 2 * c].imshow(Image.open(photo).convert("RGB"))
            try:
                axes[r, 2 * c + 1].imshow(load_image(photo), cmap="gray", vmin=0, vmax=255)
            except ValueError:  # refused: an empty square
                pass
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=1000, help="MNIST test digits per condition (default 1000)")
    parser.add_argument("--blanks", type=int, default=200, help="blank pages, all to be refused (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose predict runs (default: this one)")
    parser.add_argument("--model", type=Path, default=ROOT / "models/model.keras")
    parser.add_argument("--data", type=Path, default=ROOT / "data/prepared/mnist.npz")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--answers", type=Path, help="write every answer here (JSON) for choosing the threshold")
    parser.add_argument("--figure", type=Path, help="draw a few renderings per condition and predict's inputs")
    parser.add_argument("--keep", type=Path, help="render into this folder and keep it (default: a temporary one)")
    args = parser.parse_args()

    print(describe(), flush=True)
    with np.load(args.data) as data:
        x, y = data["x_test"], data["y_test"]
        names = [str(n) for n in data["class_names"]]
    chosen = np.sort(np.random.default_rng(args.seed).choice(len(x), args.digits, replace=False))
    digits, labels = x[chosen], np.asarray(names)[y[chosen]]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="photos-"))
    start = time.perf_counter()
    render(args.conditions, digits, folder, args.seed, args.blanks)
    print(
        f"rendered {len(args.conditions)} x {args.digits} photos and {args.blanks} blank pages in {folder} "
        f"({time.perf_counter() - start:.0f} s); predict from {args.code}",
        flush=True,
    )

    results, every = {}, {}
    for name in args.conditions + (["blank"] if args.blanks else []):
        start = time.perf_counter()
        answers, refused = predict(args.code, folder / name, args.model.resolve())
        if name == "blank":
            results[name] = {"images": args.blanks, "refused": refused}
        else:
            rows = score(answers, labels)
            every[name] = rows
            results[name] = {"images": len(rows), "right": sum(r["right"] for r in rows), "refused": refused}
        print(f"  {name}: {results[name]} ({time.perf_counter() - start:.0f} s)", flush=True)

    clean_accuracy = results["clean"]["right"] / results["clean"]["images"] if "clean" in results else None
    print("\n| condition | what | right | refused | vs clean |\n|---|---|---:|---:|---:|")
    for name in args.conditions:
        r = results[name]
        accuracy = r["right"] / r["images"]
        gap = f"{100 * (accuracy - clean_accuracy):+.1f} pt" if clean_accuracy is not None else ""
        print(f"| {name} | {CONDITIONS[name][0]} | {accuracy:.1%} | {r['refused']} | {gap} |")
    if args.blanks:
        print(
            f"| blank | a page with no digit (4 kinds of paper and light) | — | {results['blank']['refused']} of "
            f"{args.blanks} | |"
        )
    rows = [r for name in args.conditions for r in every[name]]
    print("\nAll conditions pooled:")
    print("\n".join(threshold_table(rows, [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])))
    if args.answers:
        args.answers.write_text(json.dumps({"results": results, "answers": every}))
    if args.figure:
        figure(folder, args.conditions + (["blank"] if args.blanks else []), args.figure)
        print(f"figure: {args.figure}")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
