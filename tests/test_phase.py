"""A Phase is checked when it is built: a policy's own settings are required, a schedule that
collapses is refused, bad numbers are refused naming the field -- and Phase() and the recipes run
exactly the rates they always did."""

import math
from dataclasses import asdict, replace

import numpy as np
import pytest
from toy_data import blobs

import minprune
from minprune.nn import models
from minprune.prune.recipes import RECIPES, fast_recipe
from minprune.training.fit import fit_phase
from minprune.training.phase import Phase
from minprune.training.schedules import COLLAPSE_FRACTION, LRPolicy

LENET_SOLVER = {"epochs": 10, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "l1": 0.0,
                "lr_policy": "inv", "gamma": 1e-4, "power": 0.75, "step_size": 1,
                "batch_size": 64}


def test_the_default_phase_is_caffes_lenet_solver_as_before():
    assert asdict(Phase()) == LENET_SOLVER
    assert Phase().policy() == LRPolicy("inv", 0.01, gamma=1e-4, power=0.75, step_size=1)
    assert Phase(lr_policy="inv") == Phase()
    # settings a policy does not read keep the values they had, so saved runs' fingerprints hold
    assert asdict(Phase(lr_policy="fixed")) == {**LENET_SOLVER, "lr_policy": "fixed"}
    step = Phase(lr_policy="step", gamma=0.1, step_size=5000)
    assert asdict(step) == {**LENET_SOLVER, "lr_policy": "step", "gamma": 0.1,
                            "step_size": 5000}


@pytest.mark.parametrize("missing, given", [("gamma and step_size", {}),
                                            ("step_size", {"gamma": 0.1}),
                                            ("gamma", {"step_size": 1000})])
def test_a_step_policy_needs_its_own_gamma_and_step_size(missing, given):
    # Phase's gamma 1e-4 and step size 1 are the inv policy's: under 'step' they took the rate
    # to 1e-30 in 8 iterations and training ended at 89% error.
    with pytest.raises(ValueError, match=f"lr_policy='step' needs {missing}"):
        Phase(lr_policy="step", **given)


def test_a_schedule_that_collapses_within_the_phase_is_refused():
    with pytest.raises(ValueError, match=r"below 1e-06 of its start 0.01 at iteration 2, within "
                                         r"the 10 iterations.*step_size to at least 5"):
        Phase(lr_policy="step", gamma=1e-4, step_size=1, epochs=10)
    with pytest.raises(ValueError, match="below 1e-06"):  # replace keeps the inv settings
        replace(Phase(), lr_policy="step")
    Phase(lr_policy="step", gamma=1e-4, step_size=1, epochs=2)  # the rate is 1e-4 at the end


def test_a_schedule_collapses_where_its_rate_first_falls_below_a_millionth():
    step = LRPolicy("step", 0.1, gamma=0.5, step_size=7)
    assert step.collapse_iteration() == 140  # 0.5 ** 20 < 1e-6 <= 0.5 ** 19
    assert step(139) >= 0.1 * COLLAPSE_FRACTION > step(140)
    fast_inv = LRPolicy("inv", 0.01, gamma=1.0, power=3.0)
    at = fast_inv.collapse_iteration()
    assert fast_inv(at - 1) >= 0.01 * COLLAPSE_FRACTION > fast_inv(at)
    assert Phase().policy().collapse_iteration() > 10**11  # Caffe's LeNet solver never does
    assert LRPolicy("fixed", 0.01).collapse_iteration() is None
    assert LRPolicy("step", 0.01, gamma=1.0, step_size=1).collapse_iteration() is None
    step.check_iterations(140)
    with pytest.raises(ValueError, match="at iteration 140, within the 141 iterations"):
        step.check_iterations(141)


def test_the_recipes_rates_do_not_collapse_and_are_unchanged():
    for recipe in RECIPES.values():
        for phase in (recipe.train, recipe.retrain, fast_recipe(recipe).retrain):
            assert phase.policy() == LRPolicy(phase.lr_policy, phase.lr, phase.gamma,
                                              phase.power, phase.step_size)
            # 938 batches of 64 an MNIST epoch; 5,005 of 256 an ImageNet one
            per_epoch = 5005 if recipe.dataset == "imagenet" else 938
            phase.policy().check_iterations(phase.epochs * per_epoch)
    lenet = RECIPES["lenet-300-100"].train
    assert lenet.policy()(14_000) == pytest.approx(0.005)
    assert math.isclose(lenet.policy()(13_999), 0.05)


@pytest.mark.parametrize("field, value", [
    ("lr", -0.1), ("lr", 0.0), ("lr", math.nan), ("lr", math.inf), ("lr", "0.1"),
    ("momentum", 1.0), ("momentum", -0.1), ("momentum", math.nan),
    ("weight_decay", -5e-4), ("weight_decay", math.inf), ("l1", -1e-5),
    ("epochs", -1), ("epochs", 2.5), ("batch_size", 0), ("batch_size", 64.0),
    ("lr_policy", "cosine"),
])
def test_a_bad_setting_is_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"Phase: {field} must be"):
        Phase(**{field: value})


def test_a_policy_setting_out_of_range_is_refused_naming_it():
    with pytest.raises(ValueError, match="Phase: step policy needs gamma > 0"):
        Phase(lr_policy="step", gamma=-0.1, step_size=100)
    with pytest.raises(ValueError, match="Phase: step policy needs an integer step_size"):
        Phase(lr_policy="step", gamma=0.1, step_size=0)
    with pytest.raises(ValueError, match="Phase: inv policy needs a finite power"):
        Phase(power=math.nan)


def test_zero_epochs_and_zero_regularisation_are_allowed():
    phase = Phase(epochs=0, momentum=0.0, weight_decay=0.0, l1=0.0, lr_policy="fixed")
    assert phase.epochs == 0 and phase.policy()(5) == 0.01


def test_fit_refuses_a_schedule_that_collapses_within_the_batches_it_will_run():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    before = model.fc1.weight.data.copy()
    # one epoch is at least one iteration, so Phase alone cannot tell; 256 images in batches
    # of 32 are 8 iterations, and 0.1 ** 7 is below a millionth
    phase = Phase(epochs=1, lr=0.01, batch_size=32, lr_policy="step", gamma=0.1, step_size=1)
    with pytest.raises(ValueError, match=r"at iteration 7, within the 8 iterations it runs "
                                         r"\(1 epochs of 8 batches\)"):
        fit_phase(model, blobs(256), None, phase, progress=False, log=None)
    np.testing.assert_array_equal(model.fc1.weight.data, before)  # refused before any step
