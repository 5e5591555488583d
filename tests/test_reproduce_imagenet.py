"""``minprune reproduce alexnet --fast`` on a tiny synthetic image folder, on the CPU.

No ImageNet and no GPU here: the run shows the whole pipeline works for AlexNet -- a forward and
backward at batch 2, the sensitivity sweep, one FC round and one conv round (each pruned with the
other part frozen, dropout adjusted), the per-layer table beside Table 4, the CSR export -- and
that it resumes. Its numbers mean nothing. About a minute on 2 cores: in the slow suite.
"""

import json

import numpy as np
import pytest
from PIL import Image

from minprune.commands.cli import main
from minprune.sparse.export import load_sparse

pytestmark = pytest.mark.slow


def write_image_folder(root, images_per_class, classes=("ant", "bee"), seed=0):
    rng = np.random.default_rng(seed)
    for split, count in images_per_class.items():
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = rng.integers(0, 256, size=(24 + index, 30, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.jpg")
    return root


@pytest.fixture(scope="module")
def alexnet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("alexnet")
    data = write_image_folder(root / "images", {"train": 2, "val": 1})
    args = ["reproduce", "alexnet", "--fast", "--no-progress", "--data", str(data),
            "--results", str(root / "results"), "--work", str(root / "work")]
    assert main(args) == 0
    return root, args


def test_reproduce_alexnet_fast_runs_every_stage_on_an_image_folder(alexnet_run):
    root, _ = alexnet_run
    out = root / "results" / "alexnet-fast"
    summary = json.loads((out / "summary.json").read_text())
    rounds = summary["paper_rounds"]
    assert [r["freeze"] for r in rounds] == ["conv", "fc"]  # FC pruned first, then conv
    fc_round, conv_round = (r["layer_density"] for r in rounds)
    assert fc_round["conv2.weight"] == 1.0 and fc_round["fc1.weight"] < 1.0
    assert conv_round["conv2.weight"] < 1.0
    assert rounds[0]["dropout"]["drop6"][1] < 0.5  # Sec. 3.2: dropout lowered with fc1
    assert [row["layer"] for row in summary["layer_table"]][:8] == [
        "conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3"]
    assert {row["layer"] for row in summary["sensitivity"]} >= {"conv1.weight", "fc3.weight"}
    state = load_sparse(root / "work" / "pruned_sparse.npz")
    assert state["conv2.weight"].shape == (256, 48, 5, 5)  # grouped: 96 / 2 input channels
    table = (out / "table.txt").read_text()  # beside Table 4: the weights kept match the paper's
    assert "conv1 |       35K (35K)" in table and "9.0x)" in table


def test_reproduce_alexnet_resumes_instead_of_training_again(alexnet_run, capsys):
    _, args = alexnet_run
    assert main(args) == 0
    output = capsys.readouterr().out
    assert "resumed" in output and "2 of 2 rounds done" in output


def test_imagenet_recipes_need_an_image_folder(tmp_path, capsys):
    assert main(["reproduce", "alexnet", "--fast", "--results", str(tmp_path)]) == 2
    assert "give --data DIR" in capsys.readouterr().err
