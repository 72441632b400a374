"""Classify image files with a trained model: `python -m pipeline.predict IMAGE_OR_FOLDER... [options]`.

The model is a `.keras` file (default: models/model.keras, the one the last `dvc repro` trained) or any MLflow
model URI (`runs:/<run id>/model`, `models:/<name>/<version>`, `models:/handwriting-mnist@champion`). Images of
any size, colour or grayscale, dark on light or light on dark, are preprocessed as MNIST was made (see
pipeline/data/preprocess.py), then classified in one batch. A photo's EXIF orientation is applied first. Files are
untrusted (pipeline/data/image_files.py): one that cannot be opened, decoded or prepared for any reason (Pillow's own
is given), one that is not a regular file (a FIFO, a device), not PNG, JPEG, BMP or GIF by its content, over the
pixel limit or wider or taller than 30,000 pixels (both checked before decoding: a small file can unpack into
gigabytes), a name the file system refuses, and a folder that cannot be listed or holds no image, each get a
one-line error, names escaped where they do not print (the model's class names too), and the rest are still
classified; the exit status is 1 when any input was not classified. The options' ranges and the --save folder are
checked before any image is read (no picture may replace an input or a folder, symbolic links resolved; a refusal
leaves no folder behind); a signal leaves no half-written picture. A model that cannot be used (missing, not a
model, not in the MLflow store, on a tracking server that does not answer, a web address or a storage whose client
package is not installed, or saved without its class names and not of 10 classes), or a tracking store that is not
there (which predict never makes), is a user's error, as in every tool: one line `error: …` on stderr and exit
status 1 (pipeline/core/errors.py); `--verbose` adds the traceback behind it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.config.schema import ConfigError, integer
from pipeline.core.errors import USER_ERROR, UserError, printable, reports_user_errors
from pipeline.core.interrupt import stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.data.image_files import MAX_PIXELS, MAX_SIDE, expand, load_image
from pipeline.modeling.classifier import UNSURE_BELOW, Classifier, top_k, unsure

# Each numeric option's allowed range, in the words of the pipeline's settings (pipeline/config/schema.py).
OPTION_RANGES = {"top": integer(1), "max_pixels": integer(1)}


def option_problems(args: argparse.Namespace) -> list[str]:
    """`--top 0: must be an integer ≥ 1`, one per option out of its range."""
    return [
        f"--{name.replace('_', '-')} {getattr(args, name)}: must be {allowed.text}"
        for name, allowed in OPTION_RANGES.items()
        if not allowed.test(getattr(args, name))
    ]


def table_line(name: str, top: Sequence[tuple[str, float]], width: int, mark: bool) -> str:
    """A file's line of the table; its name and the model's class names escaped, so that neither can forge a line
    or send a terminal an escape; `? unsure` after an answer below UNSURE_BELOW."""
    classes = "  ".join(f"{printable(c):>3} {p:6.1%}" for c, p in top)
    return f"{printable(name):<{width}}  {classes}" + ("  ? unsure" if mark else "")


def unsure_note(count: int) -> str:
    """The line under a table with answers marked unsure: what the mark means, and what to do."""
    return (
        f"{count} answer{'s' if count != 1 else ''} marked '? unsure': below {UNSURE_BELOW:.0%}, where 1 in 6 was "
        "wrong on the photo benchmark (1 in 650 above) — look at those images, or --save to see what the model saw"
    )


def picture_paths(files: Sequence[Path], folder: Path) -> list[Path]:
    """Where --save writes each input's picture: its path below the folder the inputs share, `.prediction.png` after
    its whole name (a/same.png and b/same.png: FOLDER/a/same.png.prediction.png, FOLDER/b/same.png.prediction.png),
    so that no two inputs share one, whatever their folders and suffixes."""
    absolute = [Path(os.path.abspath(f)) for f in files]
    if not absolute:
        return []
    common = Path(os.path.commonpath([f.parent for f in absolute]))
    return [folder / f.parent.relative_to(common) / f"{f.name}.prediction.png" for f in absolute]


# A picture is first written under a temporary name 10 bytes longer, `.<stem>.<8 random characters><suffix>`
# (pipeline/core/files.py's atomic_path), which the file system must take too.
TEMPORARY_NAME_EXTRA = 10


def entries(path: Path) -> set[Path]:
    """The directory entries reading or writing `path` reaches, symbolic links resolved: its own (what a write
    replaces, the link itself if it is one) and, for a link, its target's."""
    return {Path(os.path.realpath(path.parent)) / path.name, Path(os.path.realpath(path))}


def name_too_long(picture: Path) -> str | None:
    """Why the file system cannot take a picture's name (an input's name of 231 bytes or more), or None."""
    folder = next(p for p in picture.parents if p.is_dir())  # where the folders made for it will be
    limit = os.pathconf(folder, "PC_NAME_MAX") - TEMPORARY_NAME_EXTRA
    size = len(os.fsencode(picture.name))
    if size <= limit:
        return None
    return f"not saved (its name is {size} bytes, the file system takes {limit} here) — give the input a shorter name"


def check_save_folder(folder: Path, pictures: Sequence[Path], files: Sequence[Path]) -> dict[Path, str]:
    """Before any image is read: no picture would replace an input or a folder (symbolic links resolved), and
    every folder a picture goes into is made and takes a file; else a UserError, and the folders it made are
    removed. Gives the pictures whose names the file system cannot take, with why: their inputs are classified
    without one."""
    inputs = {entry: f for f in files for entry in entries(f)}
    for picture in pictures:
        replaced = next((inputs[e] for e in sorted(entries(picture)) if e in inputs), None)
        if replaced is not None:
            same_name = Path(os.path.abspath(replaced)) == Path(os.path.abspath(picture))
            what = "one of the inputs" if same_name else f"the input {printable(replaced)}, through a symbolic link"
        elif os.path.isdir(picture):
            what = "a folder"
        else:
            continue
        raise UserError(
            f"--save {printable(folder)}: {printable(picture)} is {what}, which a picture would replace — give "
            "another folder"
        )
    unsaved = {p: why for p in pictures if (why := name_too_long(p))}
    made: list[Path] = []
    try:
        for parent in sorted({p.parent for p in pictures if p not in unsaved}):
            made += itertools.takewhile(lambda d: not os.path.lexists(d), (parent, *parent.parents))
            parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=parent):  # unnamed where the system allows: nothing to leave behind
                pass
    except OSError as err:
        for made_folder in sorted(made, key=lambda d: len(d.parts), reverse=True):  # the deepest first
            with contextlib.suppress(OSError):  # not made after all, as the error came first
                made_folder.rmdir()
        where = "there" if parent == folder else f"into {printable(parent)}"
        why = {FileExistsError: "a file, not a folder", NotADirectoryError: "a file is in its path"}
        raise UserError(
            f"--save {printable(folder)}: cannot write pictures {where} ({why.get(type(err), err.strerror)}) — "
            "give a folder you can write to (made if missing)"
        ) from None
    return unsaved


def save_picture(path: Path, image: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> None:
    from pipeline.figures import plots

    plots.save_figure(plots.prediction(image, probs, class_names), path)


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.predict",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when every image was classified; 1 when one was not (each such file or folder is one "
        "line on stderr, the rest are still classified), or on an error (`error: …`: no image to classify, a model "
        "it cannot use); 2 for a malformed command line.",
    )
    parser.add_argument("inputs", nargs="+", help="image files or folders of them (PNG, JPEG, BMP, GIF)")
    parser.add_argument(
        "--model",
        default="models/model.keras",
        help="a .keras file or an MLflow model URI (runs:/<id>/model, models:/<name>/<version>, "
        "models:/handwriting-mnist@champion)",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=3,
        help="how many classes to show per image, at least 1 (default 3; more than the model has shows them all)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    parser.add_argument(
        "--save",
        type=Path,
        metavar="FOLDER",
        help="also save, per image, a PNG of the 28x28 input beside the probabilities: FOLDER/<the input's path "
        "below the folder the inputs share>.prediction.png (a/x.png: FOLDER/a/x.png.prediction.png); the folder is "
        "made, and checked, before any image is read",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        metavar="N",
        help=f"refuse, before decoding, an image of more than N pixels, N at least 1 (default {MAX_PIXELS:,}, PIL's "
        f"limit against decompression bombs: room for a 50-megapixel photo); one wider or taller than {MAX_SIDE:,} "
        "pixels is refused whatever N",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="when the model cannot be used, or an image cannot be classified, also print the traceback behind it",
    )
    args = parser.parse_args(argv)
    if problems := option_problems(args):
        raise ConfigError(problems)

    files, unlisted = expand(args.inputs)
    pictures = picture_paths(files, args.save) if args.save else [None] * len(files)
    unsaved = check_save_folder(args.save, pictures, files) if args.save else {}
    for path, why in [*unlisted, *unsaved.items()]:  # each input that gives no image, each picture refused
        print(f"{printable(path)}: {printable(why)}", file=sys.stderr)
    images, ok, saved_as, failed = [], [], [], len(unlisted) + len(unsaved)
    for f, picture in zip(files, pictures):
        try:
            images.append(load_image(f, args.max_pixels))
            ok.append(f)
            saved_as.append(None if picture in unsaved else picture)
        except ValueError as err:  # whatever went wrong with this file (pipeline/data/image_files.py)
            if args.verbose:
                traceback.print_exception(err)
            print(f"{printable(f)}: {printable(err)}", file=sys.stderr)
            failed += 1
    if not ok:
        raise UserError("no image could be classified")
    try:
        classifier = Classifier(args.model)
    except UserError as err:  # a model it cannot use (ModelFileError), the tracking server's absence included
        if args.verbose:
            traceback.print_exception(err)
        raise
    batch = np.stack(images)
    probs = classifier.probabilities(batch)
    width = max(len(printable(f)) for f in ok)
    marked = 0
    for f, picture, image, p in zip(ok, saved_as, batch, probs):
        top = top_k(p, classifier.class_names, args.top)
        mark = unsure(p)
        marked += mark
        if args.json:
            top_json = [{"class": c, "probability": round(q, 6)} for c, q in top]
            print(json.dumps({"file": str(f), "top": top_json, "unsure": mark}))
        else:
            print(table_line(str(f), top, width, mark))
        if picture is not None:
            try:
                save_picture(picture, image, p, classifier.class_names)
            except OSError as err:  # the folder was checked: a disk that filled up since
                print(f"{printable(picture)}: not saved ({err.strerror or err})", file=sys.stderr)
                failed += 1
    if marked and not args.json:
        print(unsure_note(marked), file=sys.stderr)
    return USER_ERROR if failed else 0


if __name__ == "__main__":
    skip_final_collection()
    # A signal ends it in one line, the picture being saved removed on the way out (pipeline/core/files.py).
    sys.exit(stop_on_signals(main, "predict", "nothing half-written is left; run the same command again"))
