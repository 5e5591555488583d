"""Chapter 8's checks (chapters/checks/ch08.py) pass the reference answers and refuse plausible
wrong ones, each with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch08

import minprune as mp

# ---- Exercise 1: the cubic ramp ------------------------------------------------------------------


def cubic_ramp(step, initial_sparsity, final_sparsity, begin_step, end_step):
    progress = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def test_exercise_1_passes_the_reference(capsys):
    ch08.exercise_1(cubic_ramp)
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_template_asks_for_an_answer():
    def template(step, initial_sparsity, final_sparsity, begin_step, end_step):
        raise NotImplementedError("Exercise 1: return the sparsity at step")

    with pytest.raises(NotImplementedError):
        ch08.exercise_1(template)


def linear(step, initial_sparsity, final_sparsity, begin_step, end_step):
    progress = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return initial_sparsity + (final_sparsity - initial_sparsity) * progress


def square(step, initial_sparsity, final_sparsity, begin_step, end_step):
    progress = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 2


def backwards(step, initial_sparsity, final_sparsity, begin_step, end_step):
    progress = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return initial_sparsity + (final_sparsity - initial_sparsity) * progress ** 3


def unclamped_before(step, initial_sparsity, final_sparsity, begin_step, end_step):
    progress = min((step - begin_step) / (end_step - begin_step), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def unclamped_after(step, initial_sparsity, final_sparsity, begin_step, end_step):
    progress = max((step - begin_step) / (end_step - begin_step), 0.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def progress_from_zero(step, initial_sparsity, final_sparsity, begin_step, end_step):
    progress = min(max(step / (end_step - begin_step), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


@pytest.mark.parametrize("wrong, mistake", [
    (linear, "not linear"),
    (square, "square"),
    (backwards, "steep and ends flat"),
    (unclamped_before, "before begin_step"),
    (unclamped_after, "after end_step"),
    (progress_from_zero, "begin_step"),
])
def test_exercise_1_refuses_wrong_answers(fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch08.exercise_1, wrong)


# ---- Exercise 2: the surgery rule ----------------------------------------------------------------

def surgery_rule(weight, mask, lower, upper):
    magnitude = np.abs(weight)
    return ((magnitude > upper) | ((mask != 0) & (magnitude > lower))).astype(np.float32)


def test_exercise_2_passes_the_reference(capsys):
    ch08.exercise_2(surgery_rule)
    assert "Exercise 2: correct" in capsys.readouterr().out


def one_threshold(weight, mask, lower, upper):
    return (np.abs(weight) > lower).astype(np.float32)


def no_splicing(weight, mask, lower, upper):
    return ((mask != 0) & (np.abs(weight) > lower)).astype(np.float32)


def signed(weight, mask, lower, upper):
    return ((weight > upper) | ((mask != 0) & (weight > lower))).astype(np.float32)


def inclusive(weight, mask, lower, upper):
    magnitude = np.abs(weight)
    return ((magnitude >= upper) | ((mask != 0) & (magnitude >= lower))).astype(np.float32)


def boolean(weight, mask, lower, upper):
    magnitude = np.abs(weight)
    return (magnitude > upper) | ((mask != 0) & (magnitude > lower))


def in_place(weight, mask, lower, upper):
    magnitude = np.abs(weight)
    mask[magnitude <= lower] = 0
    mask[magnitude > upper] = 1
    return mask


@pytest.mark.parametrize("wrong, mistake", [
    (one_threshold, "hysteresis"),
    (no_splicing, "spliced back"),
    (signed, "|w|"),
    (inclusive, "exactly"),
    (boolean, "float32"),
    (in_place, "changed the mask"),
])
def test_exercise_2_refuses_wrong_answers(fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch08.exercise_2, wrong)


# ---- Exercise 3: compression with the biases counted ---------------------------------------------

def compression(keep_ratios, shapes):
    before = sum(outputs * inputs + outputs for outputs, inputs in shapes.values())
    after = sum(round(keep_ratios[name] * outputs * inputs) + outputs
                for name, (outputs, inputs) in shapes.items())
    return before / after


@pytest.fixture(scope="module")
def lenet():
    mp.manual_seed(0)
    return mp.models.lenet_300_100()


def test_exercise_3_passes_the_reference(lenet, capsys):
    ch08.exercise_3(compression, lenet)
    assert "Exercise 3: correct" in capsys.readouterr().out


def test_the_reference_is_minprune_compression_of(lenet):
    ratios = mp.prune.keep_ratios_for_compression(lenet, 40, mp.paper.PAPER_KEEP_RATIOS[
        "lenet-300-100"], exponent=0.25)
    shapes = {name: layer.weight.shape
              for name, layer in mp.prune.layers_by_weight_name(lenet).items()}
    assert np.isclose(compression(ratios, shapes), mp.prune.compression_of(lenet, ratios))


def weights_only(keep_ratios, shapes):
    return sum(o * i for o, i in shapes.values()) / sum(
        round(keep_ratios[name] * o * i) for name, (o, i) in shapes.items())


def no_biases_after(keep_ratios, shapes):
    return sum(o * i + o for o, i in shapes.values()) / sum(
        round(keep_ratios[name] * o * i) for name, (o, i) in shapes.items())


def biases_pruned(keep_ratios, shapes):
    return sum(o * i + o for o, i in shapes.values()) / sum(
        round(keep_ratios[name] * (o * i + o)) for name, (o, i) in shapes.items())


def truncated(keep_ratios, shapes):
    return sum(o * i + o for o, i in shapes.values()) / sum(
        int(keep_ratios[name] * o * i) + o for name, (o, i) in shapes.items())


def rounded_up(keep_ratios, shapes):
    return sum(o * i + o for o, i in shapes.values()) / sum(
        int(np.ceil(keep_ratios[name] * o * i)) + o for name, (o, i) in shapes.items())


def inverted(keep_ratios, shapes):
    return 1 / compression(keep_ratios, shapes)


@pytest.mark.parametrize("wrong, mistake", [
    (weights_only, "weights only"),
    (no_biases_after, "keeps every bias"),
    (biases_pruned, "never pruned"),
    (truncated, "round"),
    (rounded_up, "round"),
    (inverted, "before over"),
])
def test_exercise_3_refuses_wrong_answers(lenet, fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch08.exercise_3, wrong, lenet)


# ---- Exercise 4: the luck a choice buys ----------------------------------------------------------

def selection_optimism(true_error, images, runs, rng, trials=50_000):
    mistakes = rng.binomial(images, true_error, size=(trials, runs))
    return true_error - (mistakes.min(axis=1) / images).mean()


def normal_approximation(true_error, images, runs, rng):
    # The lowest of `runs` normal draws, by simulation of the standard normal: also right.
    spread = np.sqrt(true_error * (1 - true_error) / images)
    return -spread * rng.standard_normal((50_000, runs)).min(axis=1).mean()


def test_exercise_4_passes_the_reference_and_the_normal_approximation(capsys):
    ch08.exercise_4(selection_optimism)
    ch08.exercise_4(normal_approximation)
    assert "Exercise 4: correct" in capsys.readouterr().out


def test_the_exact_gap_matches_a_simulation():
    simulated = selection_optimism(0.02, 2_000, 4, np.random.default_rng(5), trials=200_000)
    assert np.isclose(ch08.expected_lowest_gap(0.02, 2_000, 4), simulated, atol=3e-5)
    assert ch08.expected_lowest_gap(0.02, 2_000, 1) == pytest.approx(0.0, abs=1e-12)


def standard_error(true_error, images, runs, rng):
    return np.sqrt(true_error * (1 - true_error) / images)


def average_of_runs(true_error, images, runs, rng):
    mistakes = rng.binomial(images, true_error, size=(50_000, runs))
    return true_error - (mistakes.mean(axis=1) / images).mean()


def highest(true_error, images, runs, rng):
    mistakes = rng.binomial(images, true_error, size=(50_000, runs))
    return true_error - (mistakes.max(axis=1) / images).mean()


def in_points(true_error, images, runs, rng):
    return 100 * selection_optimism(true_error, images, runs, rng)


def in_images(true_error, images, runs, rng):
    return images * selection_optimism(true_error, images, runs, rng)


def fixed_six(true_error, images, runs, rng):
    return selection_optimism(true_error, images, 6, rng)


@pytest.mark.parametrize("wrong, mistake", [
    (standard_error, "standard error"),
    (average_of_runs, "lowest of them"),
    (highest, "below"),
    (in_points, "fraction"),
    (in_images, "fraction"),
    (fixed_six, "one run is no choice"),
])
def test_exercise_4_refuses_wrong_answers(fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch08.exercise_4, wrong)
