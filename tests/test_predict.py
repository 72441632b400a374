"""Predicting from image files, round-tripping real MNIST test images through PNG/JPEG in several styles, and
serving the logged model with `mlflow models serve`.

Stability: the model is the fast setting's (1 epoch on 10,000 images, about 90% accurate), so the round-trip
tests use only test images it classifies correctly with confidence >= 0.95 as 28x28 arrays. The question they ask
is whether preprocessing gives the model back what MNIST gave it, not whether the model is good.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from pipeline import idx, predict


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
    assert (tmp_path / "out" / "digit.prediction.png").read_bytes()[:4] == b"\x89PNG"


def test_mlflow_run_uri_as_model(confident, fast_repo, tmp_path, capsys, monkeypatch):
    x, y = confident
    Image.fromarray(x[1]).save(tmp_path / "a.png")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{fast_repo.path}/mlruns/mlflow.db")
    assert predict.main([str(tmp_path / "a.png"), "--model", f"runs:/{fast_repo.run_id}/model"]) == 0
    assert capsys.readouterr().out.split()[1] == str(y[1])


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(tmp_path / "a.png")
    assert predict.main([str(tmp_path / "a.png"), "--model", str(tmp_path / "none.keras")]) == 2
    assert "none.keras: no model file" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_model_answers_rest_invocations(confident, fast_repo):
    x, y = confident
    port = free_port()
    env = {**fast_repo.env, "MLFLOW_TRACKING_URI": f"sqlite:///{fast_repo.path}/mlruns/mlflow.db"}
    server = subprocess.Popen(
        [
            "mlflow",
            "models",
            "serve",
            "-m",
            f"runs:/{fast_repo.run_id}/model",
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
