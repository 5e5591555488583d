"""The commands read as the issue asks: small modules, one registry of schedules, one loader of
checkpoints into a named model, and reproduce's qualities saying where they come from."""

from pathlib import Path

import numpy as np
import pytest

import minprune
from minprune.commands.cli import main
from minprune.commands.compare import SCHEDULES
from minprune.commands.reproduce_report import rounds_with_quality_source
from minprune.commands.reproduce_stages import QUALITY_SOURCE, _keep_ratio_round
from minprune.nn import copy_model, models
from minprune.prune.criteria import StdOf, threshold_prune
from minprune.prune.masks import layers_by_weight_name
from minprune.training.checkpoint import load_model_checkpoint, save_checkpoint

PACKAGE = Path(minprune.__file__).parent


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400, f"{path}: split it by idea (STYLE.md)"


@pytest.mark.parametrize("path", sorted((PACKAGE / "commands").glob("[!_]*.py")),
                         ids=lambda path: path.name)
def test_each_command_module_first_says_what_it_is_for(path):
    assert path.read_text().startswith('"""'), f"{path}: begin with what the file is for"


def test_schedules_are_one_registry_in_their_order():
    assert list(SCHEDULES) == ["one-shot", "iterative", "gradual", "surgery"]
    assert all(callable(run) for run in SCHEDULES.values())


def test_a_checkpoint_of_another_model_is_named_by_the_one_loader(tmp_path, capsys):
    minprune.manual_seed(0)
    lenet = models.build("lenet-300-100")
    path = tmp_path / "lenet-300-100.npz"
    save_checkpoint(path, lenet.state_dict())
    loaded = load_model_checkpoint(models.build("lenet-300-100"), path, "lenet-300-100")
    np.testing.assert_array_equal(loaded.fc1.weight.data, lenet.fc1.weight.data)
    with pytest.raises(ValueError, match=f"{path} does not hold a lenet5"):
        load_model_checkpoint(models.build("lenet5"), path, "lenet5")
    assert main(["sensitivity", "--model", "lenet5", "--checkpoint", str(path),
                 "--out", str(tmp_path / "out")]) == 2
    assert f"{path} does not hold a lenet5" in capsys.readouterr().err


def test_reproduces_qualities_are_after_the_fact_and_relative_to_the_surviving_std():
    minprune.manual_seed(0)
    model = models.build("lenet-300-100")
    threshold_prune(model, 0.5)  # a second round: the std is of the survivors, not the dense
    same = copy_model(model)
    said = []
    qualities = _keep_ratio_round({"*": 0.3}, said.append)(model)
    assert qualities.std_of == StdOf.SURVIVING and "after the fact" in said[0]
    # Pruning at those qualities, relative to the surviving std, keeps what the keep ratio kept.
    threshold_prune(same, dict(qualities), std_of=qualities.std_of)
    for name, layer in layers_by_weight_name(model).items():
        kept = np.count_nonzero(layer.weight_mask)
        assert abs(np.count_nonzero(layers_by_weight_name(same)[name].weight_mask) - kept) <= 1

    record = {"round": 1, "decided": dict(qualities), "dropout": {}}
    shown = rounds_with_quality_source([record])[0]
    assert list(shown) == ["round", "decided", "decided_is", "std_of", "dropout"]
    assert shown["std_of"] == "surviving" and QUALITY_SOURCE in shown["decided_is"]
