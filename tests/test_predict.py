"""Predicting from image files, round-tripping real MNIST test images through PNG/JPEG in several styles, and
serving the logged model with `mlflow models serve`, by its run and by the registry's alias.

Stability: the model is the fast setting's (1 epoch on 10,000 images, about 90% accurate), so the round-trip
tests use only test images it classifies correctly with confidence >= 0.95 as 28x28 arrays. The question they ask
is whether preprocessing gives the model back what MNIST gave it, not whether the model is good.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import ExifTags, Image

from pipeline import predict
from pipeline.data import idx, image_files
from pipeline.data.datasets import DIGIT_NAMES
from pipeline.modeling.model_file import save_with_class_names
from pipeline.modeling.models import build_model
from pipeline.tracking.registry import promote
from tests.helpers.configs import conf
from tests.helpers.deadlines import fails_after
from tests.helpers.projects import start
from tests.helpers.repos import REPO, run, stage_env
from tests.helpers.servers import free_port
from tests.helpers.synthetic import BALANCED


@pytest.fixture(scope="module")
def confident(fast_repo, mirror):
    """Up to 12 MNIST test images the fast model gets right with probability >= 0.95, and their labels."""
    x = idx.parse_images(idx.read_bytes(mirror / "mnist" / "t10k-images-idx3-ubyte.gz"), "t10k")[:300]
    y = idx.parse_labels(idx.read_bytes(mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"), "t10k")[:300]
    probs = keras.models.load_model(fast_repo.models / "model.keras").predict(x.astype(np.float32), verbose=0)
    keep = np.flatnonzero((probs.argmax(1) == y) & (probs.max(1) >= 0.95))[:12]
    assert len(keep) >= 8
    return x[keep], y[keep]


def styles(image: np.ndarray, folder: Path, stem: str) -> list[Path]:
    """The same digit as a user might supply it: inverted, scaled up with margins, RGB, JPEG, BMP, GIF."""
    inverted = 255 - image
    big = np.full((200, 200), 255, np.uint8)
    big[30:170, 40:180] = np.asarray(Image.fromarray(inverted).resize((140, 140), Image.Resampling.BICUBIC))
    rgb = np.stack([image, image // 2, image], axis=-1)
    files = {
        f"{stem}_inverted.png": Image.fromarray(inverted),
        f"{stem}_big.png": Image.fromarray(big),
        f"{stem}_rgb.jpg": Image.fromarray(rgb),
        f"{stem}_plain.bmp": Image.fromarray(image),
        f"{stem}_big.gif": Image.fromarray(big),
    }
    for name, img in files.items():
        img.save(folder / name)
    return [folder / n for n in files]


def test_round_trip_through_files_in_several_styles(confident, fast_repo, tmp_path, capsys):
    x, y = confident
    expected = {}
    for i, (image, label) in enumerate(zip(x, y)):
        for path in styles(image, tmp_path, f"d{i}"):
            expected[str(path)] = str(label)
    (tmp_path / "notes.txt").write_text("not an image")
    status = predict.main(
        [
            str(tmp_path),
            str(tmp_path / "notes.txt"),
            "--model",
            str(fast_repo.models / "model.keras"),
            "--json",
            "--top",
            "2",
        ]
    )
    out = capsys.readouterr()
    results = [json.loads(line) for line in out.out.splitlines()]
    assert {r["file"] for r in results} == set(expected)  # folders skip non-image names; the .txt was named
    wrong = [(r["file"], r["top"][0]["class"]) for r in results if r["top"][0]["class"] != expected[r["file"]]]
    assert not wrong
    assert all(len(r["top"]) == 2 for r in results)
    assert f"{tmp_path / 'notes.txt'}: not a readable image" in out.err
    assert status == 1  # one file failed, the rest were classified


def test_table_output_and_saved_pictures(confident, fast_repo, tmp_path, capsys):
    x, y = confident
    path = tmp_path / "digit.png"
    Image.fromarray(255 - x[0]).save(path)
    assert (
        predict.main([str(path), "--model", str(fast_repo.models / "model.keras"), "--save", str(tmp_path / "out")])
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(path)) and line.split()[1] == str(y[0])
    assert (tmp_path / "out" / "digit.png.prediction.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def model_uris(fast_repo) -> dict[str, str]:
    """The pipeline's model by its run, and by the alias `champion`, given here to the version that run
    registered."""
    promote(fast_repo.run_id, client=MlflowClient(f"sqlite:///{fast_repo.path}/mlruns/mlflow.db"))
    return {"run": f"runs:/{fast_repo.run_id}/model", "champion": "models:/handwriting-mnist@champion"}


@pytest.mark.parametrize("uri", ["run", "champion"])
def test_mlflow_model_uri_as_model(uri, model_uris, confident, fast_repo, tmp_path, capsys, monkeypatch):
    x, y = confident
    Image.fromarray(x[1]).save(tmp_path / "a.png")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{fast_repo.path}/mlruns/mlflow.db")
    assert predict.main([str(tmp_path / "a.png"), "--model", model_uris[uri]]) == 0
    assert capsys.readouterr().out.split()[1] == str(y[1])


def test_missing_model_is_a_clear_error(tmp_path, user_error):
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(tmp_path / "a.png")
    _, err = user_error(lambda: predict.main([str(tmp_path / "a.png"), "--model", str(tmp_path / "none.keras")]))
    assert err.startswith(f"error: {tmp_path / 'none.keras'}: no model file")


@pytest.mark.parametrize("uri", ["run", "champion"])
def test_served_model_answers_rest_invocations(uri, model_uris, confident, fast_repo):
    x, y = confident
    port = free_port()
    env = {**fast_repo.env, "MLFLOW_TRACKING_URI": f"sqlite:///{fast_repo.path}/mlruns/mlflow.db"}
    server = subprocess.Popen(
        [
            "mlflow",
            "models",
            "serve",
            "-m",
            model_uris[uri],
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=fast_repo.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the CLI starts uvicorn as a child: stop the whole group at the end
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(1)
        body = json.dumps({"inputs": x[:2].astype(float).tolist()}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert np.asarray(answer["predictions"]).argmax(axis=1).tolist() == y[:2].tolist()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


# Without the real data: untrained models saved as train saves them (or as it did before models carried their
# class names), and drawn images.


def glyph(height: int = 60, width: int = 40) -> np.ndarray:
    """Dark ink on white paper: a Γ, which no rotation or flip maps to itself."""
    image = np.full((height, width), 255, np.uint8)
    image[10:-10, 8:14] = 0
    image[10:16, 8:-6] = 0
    return image


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """Untrained plain1 models: `digits` and `balanced` (47 classes) saved with their names, `old_digits` and
    `old_balanced` without."""
    folder = tmp_path_factory.mktemp("model_files")
    files = {}
    for name, classes in (("digits", DIGIT_NAMES), ("balanced", BALANCED)):
        model = build_model(conf("model", "plain1"), conf("augment", "none"), len(classes))
        files[name] = folder / f"{name}.keras"
        save_with_class_names(model, files[name], classes)
        files[f"old_{name}"] = folder / f"old_{name}.keras"
        model.save(files[f"old_{name}"])
    return files


@pytest.fixture
def digit(tmp_path) -> Path:
    Image.fromarray(glyph()).save(tmp_path / "digit.png")
    return tmp_path / "digit.png"


def test_exif_orientation_is_applied_before_preprocessing(tmp_path):
    upright = glyph()
    Image.fromarray(upright).save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # "rotate 90° clockwise to view", as a phone held upright writes
    sideways = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    sideways.save(tmp_path / "photo.png", exif=exif)
    sideways.save(tmp_path / "untagged.png")
    expected = image_files.load_image(tmp_path / "upright.png")
    np.testing.assert_array_equal(image_files.load_image(tmp_path / "photo.png"), expected)
    assert not np.array_equal(image_files.load_image(tmp_path / "untagged.png"), expected)


UNSURE = predict.unsure_note(1) + "\n"  # what predict adds to stderr for one answer marked unsure


def test_image_over_the_pixel_limit_is_refused_and_the_rest_classified(model_files, digit, capsys, user_error):
    bomb = digit.parent / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 million pixels in 48 kB
    assert predict.main([str(bomb), str(digit), "--model", str(model_files["digits"])]) == 1
    out = capsys.readouterr()
    assert (
        out.err == f"{bomb}: over the limit of {image_files.MAX_PIXELS:,} pixels (--max-pixels); not decoded\n" + UNSURE
    )
    assert out.out.startswith(str(digit)) and len(out.out.splitlines()) == 1
    # A lower limit, which the image exceeds by less than twice (where PIL itself only warns).
    _, err = user_error(
        lambda: predict.main([str(digit), "--max-pixels", "2000", "--model", str(model_files["digits"])])
    )
    assert err.splitlines() == [
        f"{digit}: over the limit of 2,000 pixels (--max-pixels); not decoded",
        "error: no image could be classified",
    ]
    assert Image.MAX_IMAGE_PIXELS == image_files.MAX_PIXELS


def test_a_fifo_in_a_folder_is_one_line_and_the_rest_are_classified(model_files, digit, capsys):
    os.mkfifo(digit.parent / "pipe.png")  # which predict used to open, and wait on for ever
    with fails_after(20):
        assert predict.main([str(digit.parent), "--model", str(model_files["digits"])]) == 1
    out = capsys.readouterr()
    assert (
        out.err == f"{digit.parent / 'pipe.png'}: a FIFO, not a regular file; not opened — give image files\n" + UNSURE
    )
    assert out.out.startswith(str(digit)) and len(out.out.splitlines()) == 1


def unusable_model(kind: str, folder: Path, model_files: dict[str, Path]) -> Path:
    """A file (or folder) a user might pass as --model by mistake, of the given kind."""
    path = folder / "model.keras"
    if kind == "text":
        path.write_text("not a model\n")
    elif kind == "truncated":
        data = model_files["digits"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "folder":
        path.mkdir()
    elif kind == "other zip":
        np.savez(folder / "arrays.npz", x=np.zeros(3))
        (folder / "arrays.npz").rename(path)
    elif kind == "other input":
        model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
        save_with_class_names(model, path, DIGIT_NAMES)
    return path


@pytest.mark.parametrize("kind", ["text", "truncated", "folder", "other zip", "other input"])
def test_unusable_model_file_is_one_line_and_exit_status_1(kind, model_files, digit, tmp_path, user_error):
    path = unusable_model(kind, tmp_path, model_files)
    _, err = user_error(lambda: predict.main([str(digit), "--model", str(path)]))
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: ") and "dvc repro" in err, err


def test_verbose_adds_the_traceback_behind_an_unusable_model(model_files, digit, tmp_path, user_error):
    path = unusable_model("other zip", tmp_path, model_files)
    _, err = user_error(lambda: predict.main([str(digit), "--model", str(path), "--verbose"]))
    assert err.startswith("Traceback") and "KeyError" in err  # Keras's own error, the cause
    assert err.splitlines()[-1].startswith(f"error: {path}: Keras cannot load it")


@pytest.mark.slow  # starts a Python process
def test_unusable_model_from_the_command_line_prints_no_traceback(model_files, digit, tmp_path):
    path = unusable_model("text", tmp_path, model_files)
    env = {k: v for k, v in stage_env(None).items() if k != "HYDRA_FULL_ERROR"}  # which adds the traceback
    result = run([sys.executable, "-m", "pipeline.predict", str(digit), "--model", str(path)], REPO, env, False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: not a .keras model file") and result.stderr.count("\n") == 1


@pytest.mark.slow  # starts Python processes that load TensorFlow
def test_from_the_command_line_the_first_line_on_stderr_is_ours(model_files, digit, tmp_path):
    """A model Keras refuses to load (a Lambda layer: code in the file) is one line, with no TensorFlow start-up
    line before it (pipeline/core/tensorflow_startup.py); and an image it cannot read is one line and status 1."""
    path = tmp_path / "lambda.keras"
    doubled = keras.layers.Lambda(lambda x: x * 2)
    model = keras.Sequential([keras.Input((28, 28)), doubled, keras.layers.Flatten(), keras.layers.Dense(10)])
    save_with_class_names(model, path, DIGIT_NAMES)
    env = {k: v for k, v in stage_env(None).items() if k != "HYDRA_FULL_ERROR"}
    result = run([sys.executable, "-m", "pipeline.predict", str(digit), "--model", str(path)], REPO, env, False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: Keras cannot load it") and result.stderr.count("\n") == 1
    (tmp_path / "notes.png").write_text("not an image")
    args = [str(digit), str(tmp_path / "notes.png"), "--model", str(model_files["digits"])]
    result = run([sys.executable, "-m", "pipeline.predict", *args], REPO, env, False)
    assert result.returncode == 1 and result.stdout.startswith(str(digit))
    assert result.stderr.startswith(f"{tmp_path / 'notes.png'}: not a readable image: ")
    assert result.stderr.count("\n") == 2 and result.stderr.endswith(UNSURE)  # and the untrained model's unsure note


def test_model_file_names_its_own_classes(model_files, digit, tmp_path, capsys):
    path = tmp_path / "models" / "model.keras"
    path.parent.mkdir()
    shutil.copy(model_files["balanced"], path)
    # A history.json beside it, as train writes one, that belongs to another model: it is not read.
    (path.parent / "history.json").write_text(json.dumps({"class_names": list(DIGIT_NAMES)}))
    assert predict.main([str(digit), "--model", str(path), "--json", "--top", "47"]) == 0
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(t["class"] for t in result["top"]) == sorted(BALANCED)


def test_model_saved_without_names_with_10_outputs_names_digits(model_files, digit, capsys):
    assert predict.main([str(digit), "--model", str(model_files["old_digits"]), "--json", "--top", "10"]) == 0
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(t["class"] for t in result["top"]) == list(DIGIT_NAMES)


def test_model_saved_without_names_with_47_outputs_is_refused(model_files, digit, user_error):
    out, err = user_error(lambda: predict.main([str(digit), "--model", str(model_files["old_balanced"])]))
    assert out == ""
    assert err.startswith(f"error: {model_files['old_balanced']}: a model of 47 classes saved without their names")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value"), [("--top", "0"), ("--top", "-1"), ("--max-pixels", "-1"), ("--max-pixels", "0")]
)
def test_an_option_out_of_range_is_one_line_before_any_image_is_read(option, value, digit, tmp_path, user_error):
    """`--top 0` printed file names alone, `--top -1` all classes but one, `--max-pixels -1` refused every image."""
    model = tmp_path / "no model here"  # the check comes first: neither the model nor the image is read
    out, err = user_error(lambda: predict.main([str(digit), "--model", str(model), option, value]))
    assert out == "" and err == f"error: {option} {value}: must be an integer ≥ 1\n"


def test_top_beyond_the_models_classes_shows_them_all(model_files, digit, capsys):
    assert predict.main([str(digit), "--model", str(model_files["digits"]), "--top", "99"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split()[1 + 2 * len(DIGIT_NAMES) :] == ["?", "unsure"]  # an untrained model: 10% each


def test_a_name_with_a_newline_cannot_forge_a_line(model_files, digit, capsys):
    forged = digit.parent / "new\nfake.png    7 99.9%"
    shutil.copy(digit, forged)
    unreadable = digit.parent / "bad\nfake.png: no such file"  # not there
    assert predict.main([str(forged), str(unreadable), "--model", str(model_files["digits"])]) == 1
    out = capsys.readouterr()
    (line,) = out.out.splitlines()
    assert line.startswith(f"{digit.parent}/new\\nfake.png    7 99.9%  ")
    assert out.err == f"{digit.parent}/bad\\nfake.png: no such file: no such file\n" + UNSURE
    assert predict.main([str(forged), "--model", str(model_files["digits"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["file"] == str(forged)  # JSON has the name itself, escaped its way


# --save: checked before any work, one picture per input whatever their names, nothing half-written on a signal.


def test_inputs_of_the_same_name_in_different_folders_get_pictures_of_their_own(model_files, tmp_path, capsys):
    for folder, image in (("a", glyph()), ("b", glyph().T)):
        (tmp_path / folder).mkdir()
        Image.fromarray(image).save(tmp_path / folder / "same.png")
    Image.fromarray(glyph()[::-1]).save(tmp_path / "a" / "same.jpg")
    inputs = [tmp_path / "a" / "same.png", tmp_path / "b" / "same.png", tmp_path / "a" / "same.jpg"]
    out = tmp_path / "out"
    assert predict.main([*map(str, inputs), "--model", str(model_files["digits"]), "--save", str(out)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    pictures = [out / "a" / "same.png.prediction.png", out / "b" / "same.png.prediction.png"]
    pictures.append(out / "a" / "same.jpg.prediction.png")
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(pictures)
    assert len({p.read_bytes() for p in pictures}) == 3  # three different inputs, three different pictures


def test_picture_paths_keep_the_inputs_apart():
    inputs = [Path("a/same.png"), Path("b/same.png"), Path("a/same.jpg"), Path("a/sub/x.png")]
    pictures = predict.picture_paths(inputs, Path("out"))
    assert pictures == [
        Path("out/a/same.png.prediction.png"),
        Path("out/b/same.png.prediction.png"),
        Path("out/a/same.jpg.prediction.png"),
        Path("out/a/sub/x.png.prediction.png"),
    ]
    assert predict.picture_paths([Path("/data/x.png")], Path("out")) == [Path("out/x.png.prediction.png")]


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("a-file", "cannot write pictures there (a file, not a folder)"),
        ("a-file/out", "cannot write pictures there (a file is in its path)"),
    ],
)
def test_a_save_folder_that_cannot_be_written_is_one_line_before_any_work(target, why, digit, tmp_path, user_error):
    """As root, a folder without write permission is still written: what cannot be written even by root is a path
    through a regular file, or a regular file where the folder should be."""
    (tmp_path / "a-file").write_text("keep me\n")
    model = tmp_path / "no model here"  # the folder is checked before the model (or any image) is read
    out, err = user_error(lambda: predict.main([str(digit), "--model", str(model), "--save", str(tmp_path / target)]))
    assert out == ""
    assert err == f"error: --save {tmp_path / target}: {why} — give a folder you can write to (made if missing)\n"
    assert (tmp_path / "a-file").read_text() == "keep me\n"


def test_a_picture_that_would_replace_an_input_is_refused(digit, tmp_path, user_error):
    earlier = tmp_path / "digit.png.prediction.png"  # a picture of an earlier run, classified in turn
    shutil.copy(digit, earlier)
    folder = str(tmp_path)
    _, err = user_error(lambda: predict.main([folder, "--model", str(tmp_path / "none.keras"), "--save", folder]))
    assert err == (
        f"error: --save {tmp_path}: {earlier} is one of the inputs, which a picture would replace — give another "
        "folder\n"
    )
    assert earlier.read_bytes() == digit.read_bytes()


@pytest.mark.slow  # starts a Python process
def test_a_signal_while_saving_leaves_no_temporary_file(model_files, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(200):
        Image.fromarray(np.roll(glyph(), i % 20, axis=1)).save(images / f"{i:03}.png")
    out = tmp_path / "out"
    process = start(
        tmp_path, "pipeline.predict", str(images), "--model", str(model_files["digits"]), "--save", str(out)
    )
    try:
        deadline = time.monotonic() + 120
        while not (out.is_dir() and any(name.startswith(".") for name in os.listdir(out))):  # a picture being saved
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert err == "predict: interrupted by SIGTERM; nothing half-written is left; run the same command again\n"
    pictures = sorted(out.iterdir())
    assert [p.name for p in pictures if p.name.startswith(".")] == []
    assert all(p.read_bytes().endswith(b"IEND\xaeB`\x82") for p in pictures)  # each saved one whole


def test_an_answer_below_the_measured_threshold_is_marked_unsure(model_files, digit, capsys):
    """An untrained model's answers (about 10% each) are marked in the table, the JSON and one line on stderr."""
    assert predict.main([str(digit), "--model", str(model_files["digits"])]) == 0
    out = capsys.readouterr()
    assert out.out.rstrip().endswith("? unsure") and out.err == UNSURE
    assert predict.main([str(digit), "--model", str(model_files["digits"]), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["unsure"] is True and out.err == ""


# One bad input never loses the batch (#30): whatever fails to open, decode or prepare one input, or to list one
# folder, is that input's one line on stderr; the others are classified, and the exit status is 1.


class Capabilities(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


@contextmanager
def as_any_user() -> Iterator[None]:
    """Permissions as they are for anyone but root, in this thread meanwhile: as root, the tests would read a folder
    without read permission (root's CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), where predict, run by its users,
    cannot. Those two are dropped from the thread's effective capabilities and given back after; root still owns
    the test's files, so it reads them by their owner's permissions."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header, caps = CapabilityHeader(0x20080522, 0), (Capabilities * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), caps) != 0:
        pytest.skip(f"capget: {os.strerror(ctypes.get_errno())}")
    effective = caps[0].effective
    caps[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capset(ctypes.byref(header), caps) != 0:
        pytest.skip(f"capset: {os.strerror(ctypes.get_errno())}")
    try:
        yield
    finally:
        caps[0].effective = effective
        assert libc.capset(ctypes.byref(header), caps) == 0


def bad_input(case: str, folder: Path) -> tuple[Path, str]:
    """An input of the given kind, made in `folder`, and the line predict gives it on stderr."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{case.replace(' ', '_')}.png"
    if case == "malformed eXIf chunk":  # Pillow raised SyntaxError
        Image.fromarray(glyph()).save(path, exif=b"garbage!")
        return path, "not a readable image (its EXIF data: not a TIFF file (header b'garbage!' not valid))"
    if case == "50,000,000 x 1":  # 6 kB; under the pixel limit, a MemoryError after a gigabyte in resize
        Image.frombytes("1", (50_000_000, 1), b"\x55" * 6_250_000).save(path)
        return path, "50,000,000 x 1 pixels, a side over the limit of 30,000; not decoded — crop it"
    if case == "truncated":  # Pillow's reason was lost: "not a readable image (OSError)"
        Image.fromarray(glyph()).save(path)
        path.write_bytes(path.read_bytes()[:80])
        return path, "not a readable image (image file is truncated)"
    if case == "name of 300 bytes":  # OSError: [Errno 36]
        return folder / ("n" * 296 + ".png"), "cannot be read (File name too long)"
    path = folder / case.replace(" ", "_")
    path.mkdir()
    if case == "folder it cannot list":  # PermissionError
        path.chmod(0)
        return path, "a folder that cannot be listed (Permission denied)"
    (path / "2024").mkdir()  # only subfolders: "no image could be classified", naming no folder
    (path / "2025").mkdir()
    return path, (
        "no image to classify: it holds 2 subfolders (a folder's images are its .bmp, .gif, .jpeg, .jpg and .png "
        "files; predict does not look into subfolders)"
    )


BAD_INPUTS = [
    "malformed eXIf chunk",
    "50,000,000 x 1",
    "truncated",
    "name of 300 bytes",
    "folder it cannot list",
    "folder of subfolders",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_bad_input_is_its_own_line_and_the_rest_are_classified(case, model_files, digit, tmp_path, capsys):
    bad, line = bad_input(case, tmp_path / "inputs")
    with as_any_user():
        assert predict.main([str(bad), str(digit), "--model", str(model_files["digits"])]) == 1
    out = capsys.readouterr()
    assert out.err == f"{bad}: {line}\n" + UNSURE
    assert out.out.startswith(str(digit)) and len(out.out.splitlines()) == 1


def test_every_bad_input_at_once_is_a_line_each(model_files, digit, tmp_path, capsys):
    bad = [bad_input(case, tmp_path / "inputs") for case in BAD_INPUTS]
    with as_any_user():
        assert predict.main([*(str(p) for p, _ in bad), str(digit), "--model", str(model_files["digits"])]) == 1
    out = capsys.readouterr()
    assert sorted(out.err.splitlines()) == sorted([f"{p}: {line}" for p, line in bad] + [UNSURE.strip()])
    assert out.out.startswith(str(digit)) and len(out.out.splitlines()) == 1


def test_a_folder_without_images_as_the_only_input_is_named(model_files, tmp_path, user_error):
    folder, line = bad_input("folder of subfolders", tmp_path)
    _, err = user_error(lambda: predict.main([str(folder), "--model", str(model_files["digits"])]))
    assert err == f"{folder}: {line}\nerror: no image could be classified\n"


def test_verbose_adds_the_traceback_behind_an_image_it_could_not_read(model_files, digit, tmp_path, capsys):
    bad, line = bad_input("malformed eXIf chunk", tmp_path)
    assert predict.main([str(bad), str(digit), "--model", str(model_files["digits"]), "--verbose"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "SyntaxError: not a TIFF file" in err  # Pillow's own, the cause
    assert err.endswith(f"\n{bad}: {line}\n" + UNSURE)


# The smaller cases of #30: each one line, and nothing changed.


def test_class_names_from_a_model_cannot_forge_a_line_or_send_an_escape(tmp_path, digit, capsys):
    names = ["forged\nfake.png    7 99.9%", "\x1b[2J", *DIGIT_NAMES[2:]]  # a line, and a terminal's clear screen
    model = build_model(conf("model", "plain1"), conf("augment", "none"), len(names))
    save_with_class_names(model, tmp_path / "odd.keras", names)
    assert predict.main([str(digit), "--model", str(tmp_path / "odd.keras"), "--top", "10"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "forged\\nfake.png    7 99.9%" in line and "\\x1b[2J" in line and "\x1b" not in line
    assert predict.main([str(digit), "--model", str(tmp_path / "odd.keras"), "--top", "10", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "\x1b" not in line and sorted(t["class"] for t in json.loads(line)["top"]) == sorted(names)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("http://example.com/model.keras", "a web address, which MLflow cannot load a model from — download"),
        ("https://example.com/models/7", "a web address, which MLflow cannot load a model from — download"),
        ("s3://bucket/model", "MLflow needs botocore to read it, which is not installed — download"),
        ("gs://bucket/model", "MLflow needs google.cloud to read it, which is not installed — download"),
    ],
)
def test_a_model_uri_it_cannot_load_is_one_line(uri, says, digit, empty_store, tmp_path, monkeypatch, user_error):
    """With a store there (the issue's case), http:// ended in a ValueError's traceback, s3:// and gs:// in a
    ModuleNotFoundError's; without one, both in "no MLflow store", which a storage's URI does not need."""
    module = {"s3": "botocore", "gs": "google.cloud"}.get(uri.split(":")[0])
    if module and importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here: MLflow would try the real storage")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{shutil.copy(empty_store, tmp_path / 'mlflow.db')}")
    out, err = user_error(lambda: predict.main([str(digit), "--model", uri]))
    assert out == "" and err.startswith(f"error: {uri}: {says}") and err.count("\n") == 1, err


def test_save_through_a_link_to_the_inputs_folder_is_refused_and_replaces_nothing(digit, tmp_path, user_error):
    """The link's real path is the inputs' folder: the earlier picture, an input again, was overwritten."""
    (tmp_path / "link").symlink_to(tmp_path)
    earlier = tmp_path / "digit.png.prediction.png"
    shutil.copy(digit, earlier)
    link = tmp_path / "link"
    _, err = user_error(lambda: predict.main([str(tmp_path), "--model", str(tmp_path / "none"), "--save", str(link)]))
    assert err == (
        f"error: --save {link}: {link / earlier.name} is the input {earlier}, through a symbolic link, which a "
        "picture would replace — give another folder\n"
    )
    assert earlier.read_bytes() == digit.read_bytes()


@pytest.mark.parametrize("blocked", ["a folder where a picture goes", "a file where a folder goes"])
def test_a_refused_save_folder_leaves_no_folder_it_made(blocked, tmp_path, user_error):
    """The pictures of a/x.png and b/y.png go to out/a/ and out/b/: out/a/ was made before out/b/ was refused."""
    for name in ("a/x.png", "b/y.png"):
        (tmp_path / name).parent.mkdir()
        Image.fromarray(glyph()).save(tmp_path / name)
    out = tmp_path / "out"
    out.mkdir()
    if blocked == "a folder where a picture goes":
        (out / "b" / "y.png.prediction.png").mkdir(parents=True)
        why = f"{out / 'b' / 'y.png.prediction.png'} is a folder, which a picture would replace — give another folder"
    else:
        (out / "b").write_text("not a folder")
        why = f"cannot write pictures into {out / 'b'} (a file, not a folder) — give a folder you can write to"
    before = sorted(out.rglob("*"))
    args = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "y.png"), "--model", str(tmp_path / "none")]
    _, err = user_error(lambda: predict.main([*args, "--save", str(out)]))
    assert err.startswith(f"error: --save {out}: {why}")
    assert sorted(out.rglob("*")) == before


def test_save_with_an_input_name_too_long_for_its_picture_refuses_that_picture_alone(model_files, tmp_path, capsys):
    """A name of 245 bytes is a file's; with `.prediction.png` it is not (the limit is 255), and the check of the
    folder ended in a traceback, leaving the folder it had made. That picture is one line, its input still
    classified; no folder is made for it alone."""
    (tmp_path / "long").mkdir()
    long = tmp_path / "long" / ("n" * 241 + ".png")
    Image.fromarray(glyph()).save(long)
    Image.fromarray(glyph()).save(tmp_path / "short.png")
    out = tmp_path / "out"
    args = [str(long), str(tmp_path / "short.png"), "--model", str(model_files["digits"]), "--save", str(out)]
    assert predict.main(args) == 1
    printed = capsys.readouterr()
    picture = out / "long" / f"{long.name}.prediction.png"
    assert printed.err == (
        f"{picture}: not saved (its name is 260 bytes, the file system takes 245 here) — give the input a shorter "
        "name\n" + predict.unsure_note(2) + "\n"
    )
    assert [line.split()[0] for line in printed.out.splitlines()] == [str(long), str(tmp_path / "short.png")]
    assert sorted(out.rglob("*")) == [out / "short.png.prediction.png"]


def test_the_longest_picture_name_it_takes_is_written(model_files, tmp_path, capsys):
    """The limit is the file system's, less the 10 bytes that atomic_path (pipeline/core/files.py) adds for the
    temporary name: an input of 230 bytes has a picture of 245, and a temporary name of 255."""
    long = tmp_path / ("n" * 226 + ".png")
    Image.fromarray(glyph()).save(long)
    assert predict.main([str(long), "--model", str(model_files["digits"]), "--save", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / f"{long.name}.prediction.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("sqlite:///{tmp}/typo/mlflow.db", "no MLflow store at {tmp}/typo/mlflow.db — check the path"),
        ("sqlite:///{tmp}/mlflow.db", "no MLflow store at {tmp}/mlflow.db — check the path"),
        ("{tmp}/mlruns", "a path, not a tracking store's URI — a SQLite store is sqlite:///<its .db file>"),
        ("mlflow.db", "a path, not a tracking store's URI — a SQLite store is sqlite:///<its .db file>"),
        ("mongodb://db.lab/mlflow", "mongodb://, not a tracking store's scheme — "),
    ],
)
def test_a_tracking_store_it_cannot_read_is_one_line_and_never_made(
    uri, says, digit, tmp_path, monkeypatch, user_error
):
    """A mistyped SQLite path made a new, empty store (about 1 MB) before "no such run"; a bare path or an unknown
    scheme ended in MLflow's traceback."""
    uri, says = uri.format(tmp=tmp_path), says.format(tmp=tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    model = "runs:/0123456789abcdef0123456789abcdef/model"
    out, err = user_error(lambda: predict.main([str(digit), "--model", model]))
    assert out == "" and err.startswith(f"error: {model}: {uri} (MLFLOW_TRACKING_URI): {says}")
    assert err.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == [digit]  # no store, no folder
