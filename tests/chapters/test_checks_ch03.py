"""Chapter 3's checks (chapters/checks/ch03.py) pass the solutions and refuse plausible wrong
answers with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch03

# Exercise 1: the masked momentum update -------------------------------------------------------

def _right_step(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad + weight_decay * weight
    weight = weight - lr * velocity
    return weight * mask, velocity * mask


def _velocity_masked_first(weight, velocity, grad, mask, lr, momentum, weight_decay):
    # Equivalent: with the weight and gradient already 0 where pruned, a velocity masked before
    # the update stays 0 there.
    velocity = momentum * (velocity * mask) + grad + weight_decay * weight
    return weight - lr * velocity, velocity


def test_exercise_1_passes_the_solution(capsys):
    ch03.exercise_1(_right_step)
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_passes_an_equivalent_order():
    ch03.exercise_1(_velocity_masked_first)


def test_exercise_1_template_says_what_to_do():
    def template(weight, velocity, grad, mask, lr, momentum, weight_decay):
        raise NotImplementedError("Exercise 1: return the new (weight, velocity)")

    with pytest.raises(NotImplementedError, match="Exercise 1"):
        ch03.exercise_1(template)


def _no_mask(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad + weight_decay * weight
    return weight - lr * velocity, velocity


def _weight_only(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad + weight_decay * weight
    return (weight - lr * velocity) * mask, velocity


def _gradient_only(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity = momentum * velocity + (grad + weight_decay * weight) * mask
    return weight - lr * velocity, velocity


def _in_place(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity *= momentum
    velocity += grad + weight_decay * weight
    velocity *= mask
    return (weight - lr * velocity) * mask, velocity


def _decay_outside_momentum(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad
    weight = weight - lr * (velocity + weight_decay * weight)
    return weight * mask, velocity * mask


def _old_velocity(weight, velocity, grad, mask, lr, momentum, weight_decay):
    new_velocity = momentum * velocity + grad + weight_decay * weight
    return (weight - lr * velocity) * mask, new_velocity * mask


def _plus_sign(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad + weight_decay * weight
    return (weight + lr * velocity) * mask, velocity * mask


def _returns_nothing(weight, velocity, grad, mask, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad + weight_decay * weight
    weight = (weight - lr * velocity) * mask


@pytest.mark.parametrize(("step", "mistake"), [
    (_no_mask, "no longer exactly 0"),
    (_gradient_only, "no longer exactly 0"),
    (_weight_only, "velocity"),
    (_in_place, "in place"),
    (_decay_outside_momentum, "weight decay"),
    (_old_velocity, "*new* velocity"),
    (_plus_sign, "against its direction"),
    (_returns_nothing, "pair"),
])
def test_exercise_1_rejects_wrong_updates(fails_with_hint, step, mistake):
    hint = fails_with_hint(ch03.exercise_1, step)
    assert mistake in hint


# Exercise 2: the retraining dropout ratio (Eq. 2) ---------------------------------------------

def _right_dropout(original_ratio, kept_connections, original_connections):
    return original_ratio * np.sqrt(kept_connections / original_connections)


def test_exercise_2_passes_the_solution(capsys):
    ch03.exercise_2(_right_dropout)
    assert "Exercise 2: correct" in capsys.readouterr().out


def test_exercise_2_template_says_what_to_do():
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        ch03.exercise_2(lambda original_ratio, kept, original: None)


@pytest.mark.parametrize(("dropout", "mistake"), [
    (lambda d, kept, total: d * kept / total, "square root"),
    (lambda d, kept, total: d * np.sqrt(total / kept), "upside down"),
    (lambda d, kept, total: 1 - (1 - d) * np.sqrt(kept / total), "keep probability"),
    (lambda d, kept, total: d * (kept / total) ** 2, "square root"),
    (lambda d, kept, total: np.sqrt(kept / total), "original ratio D_o"),
    (lambda d, kept, total: d * np.sqrt(kept / 100), "adjust_dropout"),
])
def test_exercise_2_rejects_wrong_ratios(fails_with_hint, dropout, mistake):
    hint = fails_with_hint(ch03.exercise_2, dropout)
    assert mistake in hint


# Exercise 3: a geometric schedule -------------------------------------------------------------

def _right_schedule(target, rounds):
    return [target ** (k / rounds) for k in range(1, rounds + 1)]


def test_exercise_3_passes_the_solution(capsys):
    ch03.exercise_3(_right_schedule)
    assert "Exercise 3: correct -- 53.2%, 28.3%, 15.0%, 8.0%" in capsys.readouterr().out


def test_exercise_3_template_says_what_to_do():
    with pytest.raises(NotImplementedError, match="Exercise 3"):
        ch03.exercise_3(lambda target, rounds: None)


@pytest.mark.parametrize(("schedule", "mistake"), [
    (lambda t, n: [1 - (1 - t) * k / n for k in range(1, n + 1)], "equal steps"),
    (lambda t, n: [t ** (k / n) for k in range(n)], "prunes nothing"),
    (lambda t, n: [t ** (1 / n)] * n, "share of the survivors"),
    (lambda t, n: [t ** (k / (n + 1)) for k in range(1, n + 1)], "target"),
    (lambda t, n: [t ** (k / n) for k in range(1, n + 2)], "keep ratios"),
    (lambda t, n: [t ** (1 / k) for k in range(1, n + 1)], "keep less"),
    (lambda t, n: [t ** (k / n) for k in range(n, 0, -1)], "keep less"),
])
def test_exercise_3_rejects_wrong_schedules(fails_with_hint, schedule, mistake):
    hint = fails_with_hint(ch03.exercise_3, schedule)
    assert mistake in hint
