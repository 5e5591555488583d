"""The recipes: their numbers trace back to the paper (or say they are minprune's), their targets
name real layers, and the ImageNet recipes' rounds prune each part only when they retrain it."""

import dataclasses
import math

import numpy as np
import pytest

import minprune
from minprune.base import paper
from minprune.nn import models
from minprune.prune import keep_ratio_prune, layers_by_weight_name
from minprune.prune.recipes import RECIPES, Recipe, keep_ratio_plan
from minprune.prune.retraining import geometric_keep_ratios

IMAGENET_TRAIN_IMAGES = 1_281_167  # ILSVRC-2012


@pytest.fixture(scope="module")
def alexnet():
    minprune.manual_seed(0)
    return models.alexnet()


@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_imagenet_recipes_are_caffes_solver_then_one_hundredth_of_its_rate(name):
    recipe = RECIPES[name]
    train, retrain = recipe.train, recipe.retrain
    assert (train.lr, train.momentum, train.weight_decay, train.batch_size) == (
        0.01, 0.9, 5e-4, 256)
    assert (train.lr_policy, train.gamma, train.step_size) == ("step", 0.1, 100_000)
    assert retrain.lr == pytest.approx(train.lr * paper.RETRAIN_LR_FACTORS["alexnet"])
    assert dataclasses.replace(retrain, lr=train.lr, epochs=train.epochs) == train
    assert recipe.targets == paper.PAPER_KEEP_RATIOS[name]
    assert recipe.dropout == 0.5 and recipe.dataset == "imagenet"
    assert recipe.freeze_schedule == ("conv", "fc") * 5 and recipe.rounds == 10
    assert recipe.paper_summary is paper.PAPER_SUMMARY[name]


def test_alexnets_90_epochs_are_caffes_450k_iterations():
    iterations_per_epoch = math.ceil(IMAGENET_TRAIN_IMAGES / RECIPES["alexnet"].train.batch_size)
    assert iterations_per_epoch == 5005
    assert RECIPES["alexnet"].train.epochs * iterations_per_epoch == pytest.approx(450_000,
                                                                                   rel=0.001)


def test_recipes_check_their_freeze_schedule_and_dataset():
    recipe = RECIPES["lenet5"]
    with pytest.raises(ValueError, match="freeze_schedule has 2 entries for 5 rounds"):
        dataclasses.replace(recipe, freeze_schedule=("conv", "fc"))
    with pytest.raises(ValueError, match="freeze must be one of"):
        dataclasses.replace(recipe, rounds=1, freeze_schedule=("dense",))
    with pytest.raises(ValueError, match="dataset must be one of .* got 'cifar10'"):
        dataclasses.replace(recipe, dataset="cifar10")
    assert isinstance(recipe, Recipe) and recipe.dataset == "mnist"


def test_without_a_freeze_schedule_the_plan_is_geometric():
    recipe = RECIPES["lenet5"]
    assert keep_ratio_plan(recipe, models.lenet5()) == geometric_keep_ratios(recipe.targets,
                                                                             recipe.rounds)


def test_alexnets_rounds_prune_only_the_part_they_retrain(alexnet):
    recipe = RECIPES["alexnet"]
    plan = keep_ratio_plan(recipe, alexnet)
    assert len(plan) == recipe.rounds and plan[-1] == pytest.approx(recipe.targets)
    conv = [name for name in recipe.targets if name.startswith("conv")]
    fc = [name for name in recipe.targets if name.startswith("fc")]
    previous = dict.fromkeys(recipe.targets, 1.0)
    for ratios, frozen in zip(plan, recipe.freeze_schedule, strict=True):
        held, lowered = (conv, fc) if frozen == "conv" else (fc, conv)
        assert all(ratios[name] == previous[name] for name in held)
        assert all(ratios[name] < previous[name] for name in lowered)
        previous = ratios
    # Five equal multiplicative steps per part: fc1 keeps 0.09 ** (1/5) = 62% after round 1.
    assert plan[0]["fc1.weight"] == pytest.approx(0.09 ** 0.2)


def test_a_held_part_keeps_its_masks_when_its_round_prunes():
    """Pruning a layer again at the keep ratio it already has changes nothing."""
    minprune.manual_seed(3)
    model = models.lenet5()
    recipe = dataclasses.replace(RECIPES["lenet5"], rounds=2, freeze_schedule=("fc", "conv"))
    first, second = keep_ratio_plan(recipe, model)
    assert first["fc1.weight"] == 1.0 and first["conv2.weight"] < 1.0
    keep_ratio_prune(model, first)
    masks = {name: layer.weight_mask.copy() for name, layer in layers_by_weight_name(model).items()}
    keep_ratio_prune(model, second)
    for name in ("conv1.weight", "conv2.weight"):
        np.testing.assert_array_equal(layers_by_weight_name(model)[name].weight_mask, masks[name])
    assert layers_by_weight_name(model)["fc1.weight"].weight_mask.mean() == pytest.approx(
        recipe.targets["fc1.weight"], abs=1e-3)


def test_a_schedule_that_never_retrains_a_part_is_refused():
    recipe = dataclasses.replace(RECIPES["lenet5"], rounds=2, freeze_schedule=("conv", "conv"))
    with pytest.raises(ValueError, match="never retrains the conv layers"):
        keep_ratio_plan(recipe, models.lenet5())
