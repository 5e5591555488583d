"""Chapter 4's checks (chapters/checks/ch04.py) pass the solutions and refuse plausible wrong
answers with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch04

import minprune as mp

# Exercise 1: the harshest keep ratio within a tolerance ---------------------------------------

def _right_harshest(rows, layer, max_drop, baseline):
    levels = sorted((row for row in rows if row["layer"] == layer),
                    key=lambda row: row["keep_ratio"], reverse=True)
    best = None
    for row in levels:
        if baseline - row["accuracy"] > max_drop:
            break
        best = row["keep_ratio"]
    return best


def _measured_rows():
    """Rows shaped like sensitivity_analysis's, accuracies as a 2,000-image set gives them."""
    rng = np.random.default_rng(0)
    rows = []
    for layer, steepness in (("conv1.weight", 40), ("fc1.weight", 3), ("fc2.weight", 12)):
        for ratio in (1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02):
            correct = 1960 - int(steepness * (1 - ratio) ** 4 * 20) + int(rng.integers(-3, 4))
            accuracy = min(correct, 1960) / 2000
            rows.append({"layer": layer, "keep_ratio": ratio, "accuracy": accuracy})
    return rows, 0.98


def test_exercise_1_passes_the_solution(capsys):
    ch04.exercise_1(_right_harshest, *_measured_rows())
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_template_says_what_to_do():
    def template(rows, layer, max_drop, baseline):
        raise NotImplementedError("Exercise 1: return the harshest keep ratio")

    with pytest.raises(NotImplementedError, match="Exercise 1"):
        ch04.exercise_1(template, *_measured_rows())


def _no_early_stop(rows, layer, max_drop, baseline):
    within = [row["keep_ratio"] for row in rows
              if row["layer"] == layer and baseline - row["accuracy"] <= max_drop]
    return min(within)


def _first_failure(rows, layer, max_drop, baseline):
    levels = sorted((row for row in rows if row["layer"] == layer),
                    key=lambda row: row["keep_ratio"], reverse=True)
    for row in levels:
        if baseline - row["accuracy"] > max_drop:
            return row["keep_ratio"]
    return levels[-1]["keep_ratio"]


def _unsorted(rows, layer, max_drop, baseline):
    best = None
    for row in (row for row in rows if row["layer"] == layer):  # in the order given
        if baseline - row["accuracy"] > max_drop:
            break
        best = row["keep_ratio"]
    return best


def _strict(rows, layer, max_drop, baseline):
    levels = sorted((row for row in rows if row["layer"] == layer),
                    key=lambda row: row["keep_ratio"], reverse=True)
    best = None
    for row in levels:
        if baseline - row["accuracy"] >= max_drop:
            break
        best = row["keep_ratio"]
    return best


def _every_layer(rows, layer, max_drop, baseline):
    levels = sorted(rows, key=lambda row: row["keep_ratio"], reverse=True)
    best = None
    for row in levels:
        if baseline - row["accuracy"] > max_drop:
            break
        best = row["keep_ratio"]
    return best


def _sign_flipped(rows, layer, max_drop, baseline):
    levels = sorted((row for row in rows if row["layer"] == layer),
                    key=lambda row: row["keep_ratio"], reverse=True)
    best = None
    for row in levels:
        if row["accuracy"] - baseline > max_drop:
            break
        best = row["keep_ratio"]
    return best


@pytest.mark.parametrize(("answer", "mistake"), [
    (_no_early_stop, "lucky harsher level"),
    (_first_failure, "the last level *before* it"),
    (_unsorted, "gentlest level"),
    (_strict, "at most"),
    (_every_layer, "layer asked for"),
    (_sign_flipped, "layer asked for"),
])
def test_exercise_1_rejects_wrong_walks(fails_with_hint, answer, mistake):
    hint = fails_with_hint(ch04.exercise_1, answer, *_measured_rows())
    assert mistake in hint


# Exercise 2: a size budget ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_pair():
    """An MLP 128-32-4 whose labels depend on 4 of its 128 inputs: the first layer holds 97% of
    the weights and most are useless, the small output layer cannot lose many -- LeNet-5's
    situation in miniature."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4000, 128)).astype(np.float32)
    labels = np.argmax(images[:, :4], axis=1).astype(np.int64)
    train = mp.data.Dataset(images[:3000], labels[:3000])
    validation = mp.data.Dataset(images[3000:], labels[3000:])
    mp.manual_seed(0)
    model = mp.nn.Sequential(mp.nn.Linear(128, 32), mp.nn.ReLU(), mp.nn.Linear(32, 4))
    mp.fit_phase(model, train, None,
                 mp.Phase(epochs=10, lr=0.05, lr_policy="fixed", weight_decay=1e-3),
                 progress=False, log=lambda line: None)
    assert mp.evaluate(model, validation)["accuracy"] > 0.85
    return model, validation


def _names(model):
    return list(mp.prune.layers_by_weight_name(model))


def test_exercise_2_passes_a_budget_spent_where_it_is_cheap(trained_pair, capsys):
    model, validation = trained_pair
    first, second = _names(model)
    ch04.exercise_2({first: 0.03, second: 0.6}, model, validation)  # 123 + 77 <= 211 weights
    assert "Exercise 2: correct" in capsys.readouterr().out


def test_exercise_2_template_says_what_to_do(trained_pair):
    model, validation = trained_pair
    first, second = _names(model)
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        ch04.exercise_2({first: None, second: None}, model, validation)
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        ch04.exercise_2(None, model, validation)


@pytest.mark.parametrize(("ratios", "mistake"), [
    ({0: 1 / 20, 1: 1 / 20}, "the uniform cut"),            # the uniform cut itself
    ({0: 0.05, 1: 0.02}, "already costs"),                  # the small layer cut hardest
    ({0: 0.08, 1: 0.19}, "budget is"),                      # Table 3's fc1 and fc2: 12x, not 20x
    ({0: 0.2, 1: 1.0}, "budget is"),                        # the small layer kept, the big not cut
    ({0: 3, 1: 60}, "fraction"),                            # percentages, not fractions
])
def test_exercise_2_rejects_wrong_budgets(fails_with_hint, trained_pair, ratios, mistake):
    model, validation = trained_pair
    names = _names(model)
    hint = fails_with_hint(ch04.exercise_2, {names[i]: r for i, r in ratios.items()}, model,
                           validation)
    assert mistake in hint


def test_exercise_2_names_unknown_layers(fails_with_hint, trained_pair):
    model, validation = trained_pair
    hint = fails_with_hint(ch04.exercise_2, {"conv1.weight": 0.5}, model, validation)
    assert "not prunable layers" in hint


# Exercise 3: the FLOP of a CONV layer ----------------------------------------------------------

def _right_flop(h, w, k, c_in, c_out):
    return 2 * (h - k + 1) * (w - k + 1) * k * k * c_in * c_out


def test_exercise_3_passes_the_solution(capsys):
    ch04.exercise_3(_right_flop)
    assert "Exercise 3: correct" in capsys.readouterr().out


def test_exercise_3_template_says_what_to_do():
    with pytest.raises(NotImplementedError, match="Exercise 3"):
        ch04.exercise_3(lambda h, w, k, c_in, c_out: None)


@pytest.mark.parametrize(("flop", "mistake"), [
    (lambda h, w, k, c_in, c_out: (h - k + 1) * (w - k + 1) * k * k * c_in * c_out, "2 FLOP"),
    (lambda h, w, k, c_in, c_out: 2 * h * w * k * k * c_in * c_out, "24 x 24"),
    (lambda h, w, k, c_in, c_out: 2 * (h - k) * (w - k) * k * k * c_in * c_out, "h - k + 1"),
    (lambda h, w, k, c_in, c_out: 2 * (h - k + 1) * (w - k + 1) * k * k * c_out, "input channels"),
    (lambda h, w, k, c_in, c_out: 2 * (h - k + 1) ** 2 * k * k * c_in * c_out, "on its own"),
    (lambda h, w, k, c_in, c_out: 2 * (h - k + 1) * (w - k + 1) * k * c_in * c_out, "expected"),
])
def test_exercise_3_rejects_wrong_counts(fails_with_hint, flop, mistake):
    hint = fails_with_hint(ch04.exercise_3, flop)
    assert mistake in hint


# Exercise 4: dead neurons ----------------------------------------------------------------------

def _right_dead(mask_a, mask_b):
    return np.flatnonzero(~np.any(mask_a != 0, axis=1) | ~np.any(mask_b != 0, axis=0))


def test_exercise_4_passes_the_solution(capsys):
    ch04.exercise_4(_right_dead)
    assert "Exercise 4: correct" in capsys.readouterr().out


def test_exercise_4_template_says_what_to_do():
    with pytest.raises(NotImplementedError, match="Exercise 4"):
        ch04.exercise_4(lambda mask_a, mask_b: None)


@pytest.mark.parametrize(("dead", "mistake"), [
    (lambda a, b: np.flatnonzero(~a.any(axis=1) & ~b.any(axis=0)), "not and"),
    (lambda a, b: np.flatnonzero(~a.any(axis=1)), "only the neurons without inputs"),
    (lambda a, b: np.flatnonzero(~b.any(axis=0)), "only the neurons without outputs"),
    (lambda a, b: ~a.any(axis=1) | ~b.any(axis=0), "boolean mask"),
    (lambda a, b: np.flatnonzero(~a.any(axis=0)), "expected four"),
    (lambda a, b: [1, 2, 4, 5], "random"),
])
def test_exercise_4_rejects_wrong_neurons(fails_with_hint, dead, mistake):
    hint = fails_with_hint(ch04.exercise_4, dead)
    assert mistake in hint
