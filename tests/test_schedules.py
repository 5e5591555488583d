"""The learning-rate policies: Caffe's formulas, the settings each needs, and where a rate
collapses (`minprune.training.schedules`)."""

import math
import re

import pytest

from minprune.training.schedules import COLLAPSE_FRACTION, LRPolicy, make_policy

# -- the rates: Caffe's fixed, step and inv -------------------------------------------------------


@pytest.mark.parametrize("name, base_lr, options, rates", [
    ("fixed", 0.01, {}, {0: 0.01, 1: 0.01, 10**9: 0.01}),
    # step: base_lr * gamma ^ floor(iteration / step_size)
    ("step", 0.1, {"gamma": 0.5, "step_size": 100},
     {0: 0.1, 99: 0.1, 100: 0.05, 199: 0.05, 200: 0.025, 250: 0.025, 1000: 0.1 * 0.5**10}),
    ("step", 0.1, {"gamma": 0.5, "step_size": 1}, {0: 0.1, 1: 0.05, 3: 0.0125}),
    # inv: base_lr * (1 + gamma * iteration) ^ (-power); 1 + 1e-4 * 10_000 = 2
    ("inv", 0.01, {"gamma": 1e-4, "power": 0.75},
     {0: 0.01, 10_000: 0.01 * 2**-0.75, 30_000: 0.01 * 4**-0.75}),
    ("inv", 0.5, {"gamma": 1.0, "power": 1.0}, {0: 0.5, 1: 0.25, 3: 0.125}),
    # gamma 0 or power 0: inv is a constant rate
    ("inv", 0.1, {"gamma": 0.0, "power": 0.75}, {0: 0.1, 10**6: 0.1}),
    ("inv", 0.1, {"gamma": 1e-4, "power": 0.0}, {0: 0.1, 10**6: 0.1}),
])
def test_each_policy_gives_caffes_rate_at_each_iteration(name, base_lr, options, rates):
    policy = LRPolicy(name, base_lr, **options)
    assert {iteration: policy(iteration) for iteration in rates} == pytest.approx(rates,
                                                                                  rel=1e-12)


def test_make_policy_builds_the_policy_its_caffe_name_and_options_describe():
    step = make_policy("step", 0.1, gamma=0.5, step_size=10)
    assert step == LRPolicy("step", 0.1, gamma=0.5, step_size=10)
    assert step(10) == 0.05
    assert make_policy("inv", 0.01, gamma=1e-4, power=0.75)(10_000) == pytest.approx(
        0.01 * 2**-0.75, rel=1e-12)
    assert make_policy("fixed", 0.2)(7) == 0.2


# -- the settings each policy needs, refused with a message naming them ---------------------------


@pytest.mark.parametrize("arguments, message", [
    (("cosine", 0.1), "lr policy must be 'fixed', 'step' or 'inv', got 'cosine'"),
    (("fixed", 0.0), "base_lr must be a finite number > 0, got 0.0"),
    (("fixed", -0.1), "base_lr must be a finite number > 0, got -0.1"),
    (("fixed", float("nan")), "base_lr must be a finite number > 0, got nan"),
    (("fixed", True), "base_lr must be a finite number > 0, got True"),
    (("fixed", "0.1"), "base_lr must be a finite number > 0, got '0.1'"),
    (("step", 0.1), "the step policy needs gamma and step_size"),
    (("step", 0.1, 0.1), "the step policy needs step_size"),
    (("inv", 0.1), "the inv policy needs gamma and power"),
    (("inv", 0.1, 1e-4), "the inv policy needs power"),
    (("step", 0.1, 0.1, None, 0), "step policy needs an integer step_size >= 1 (iterations "
                                  "between drops), got 0"),
    (("step", 0.1, 0.1, None, 2.5), "step policy needs an integer step_size >= 1 (iterations "
                                    "between drops), got 2.5"),
    (("step", 0.1, 0.0, None, 10), "step policy needs gamma > 0 (the factor of each drop, e.g. "
                                   "0.1), got 0.0"),
    (("step", 0.1, -0.1, None, 10), "step policy needs gamma > 0 (the factor of each drop, "
                                    "e.g. 0.1), got -0.1"),
    (("step", 0.1, float("nan"), None, 10), "step policy needs gamma > 0 (the factor of each "
                                            "drop, e.g. 0.1), got nan"),
    (("inv", 0.1, -1e-4, 0.75), "inv policy needs a finite gamma >= 0, got -0.0001"),
    (("inv", 0.1, float("inf"), 0.75), "inv policy needs a finite gamma >= 0, got inf"),
    (("inv", 0.1, 1e-4, -0.75), "inv policy needs a finite power >= 0, got -0.75"),
])
def test_a_policy_refuses_settings_it_cannot_use_naming_them(arguments, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        LRPolicy(*arguments)


# -- where a rate collapses ------------------------------------------------------------------------


class _CountedGamma(float):
    """A gamma that counts the rates evaluated with it (each power or product taken of it) and
    fails past ``limit``: `collapse_iteration` estimates the collapse from logarithms and checks
    a few neighbouring rates; walking the iterations would never end (LeNet's solver collapses
    after ~10^12 of them, and every ``Phase()`` asks)."""

    limit = 20

    def __new__(cls, value):
        gamma = super().__new__(cls, value)
        gamma.evaluations = 0
        return gamma

    def _count(self):
        self.evaluations += 1
        if self.evaluations > self.limit:
            raise AssertionError(f"the rate was evaluated more than {self.limit} times")

    def __pow__(self, exponent):
        self._count()
        return float(self) ** exponent

    def __mul__(self, other):
        self._count()
        return float(self) * other

    __rmul__ = __mul__


@pytest.mark.parametrize("name, options, expected", [
    ("step", {"gamma": 0.5, "step_size": 7}, 140),  # 0.5 ** 20 < 1e-6 <= 0.5 ** 19
    ("step", {"gamma": 0.1, "step_size": 1000}, 7000),  # 0.1 ** 6 rounds to just above 1e-6
    ("step", {"gamma": 1e-3, "step_size": 10}, 30),  # 1e-3 ** 2 is 1e-6 exactly: not below it
    ("step", {"gamma": 1e-7, "step_size": 5}, 5),  # below at the first drop
    ("step", {"gamma": 1 - 1e-9, "step_size": 1}, None),  # a slow decay: ~1.4e10 iterations
    # gammas next to 1, where the logarithms' estimate overshoots by 8 and 3 drops
    ("step", {"gamma": math.nextafter(1.0, 0.0), "step_size": 1}, None),
    ("step", {"gamma": 1 - 3 * 2**-53, "step_size": 1}, None),
    ("inv", {"gamma": 1e13, "power": 1.0}, 1),  # below at the first iteration
    ("inv", {"gamma": 1.0, "power": 2.0}, 1000),  # 1 / 1000^2 is 1e-6 exactly: not below it
    ("inv", {"gamma": 1.0, "power": 1.0}, 1_000_000),  # 1 / 10^6 likewise
    ("inv", {"gamma": 1e-4, "power": 0.75}, None),  # Caffe's LeNet solver: ~9.8e11
    ("inv", {"gamma": 1e-6, "power": 1.0}, None),  # ~1e12
    ("inv", {"gamma": 3e-9, "power": 0.8}, None),  # the estimate overshoots by 3 iterations
])
def test_a_rate_collapses_at_the_first_iteration_below_a_millionth_of_its_start(
        name, options, expected):
    """`collapse_iteration` is exact -- the rate there is below a millionth of base_lr and the
    rate one iteration earlier is not -- and is found with a handful of rate evaluations."""
    gamma = _CountedGamma(options["gamma"])
    at = LRPolicy(name, 1.0, **{**options, "gamma": gamma}).collapse_iteration()
    assert gamma.evaluations <= _CountedGamma.limit
    policy = LRPolicy(name, 1.0, **options)  # base_lr 1: the rate is the fraction itself
    assert policy(at) < COLLAPSE_FRACTION <= policy(at - 1)
    if expected is not None:
        assert at == expected


@pytest.mark.parametrize("name, options", [
    ("fixed", {}),
    ("step", {"gamma": 1.0, "step_size": 1}),  # never drops
    ("step", {"gamma": 1.5, "step_size": 1}),  # rises
    ("inv", {"gamma": 0.0, "power": 0.75}),  # constant
    ("inv", {"gamma": 1e-4, "power": 0.0}),  # constant
    ("inv", {"gamma": 1e-4, "power": 0.1}),  # a millionth only after ~10^64 iterations
])
def test_a_rate_that_never_falls_below_a_millionth_within_any_run_has_no_collapse(name, options):
    if "gamma" in options:
        options = {**options, "gamma": _CountedGamma(options["gamma"])}
    assert LRPolicy(name, 0.01, **options).collapse_iteration() is None


def test_a_run_may_end_on_the_last_iteration_before_the_collapse():
    step = LRPolicy("step", 0.1, gamma=0.5, step_size=7)  # collapses at iteration 140
    step.check_iterations(140)  # iterations 0..139
    step.check_iterations(100, "a count")
    LRPolicy("fixed", 0.1).check_iterations(10**12)
    LRPolicy("inv", 0.01, gamma=1.0, power=1.0).check_iterations(10**6, "ten epochs")


@pytest.mark.parametrize("arguments, iterations, counted, message", [
    (("step", 0.1, 0.5, None, 7), 141, "",
     "the step learning-rate policy (gamma 0.5, step_size 7) takes the rate below 1e-06 of its "
     "start 0.1 at iteration 140, within the 141 iterations it runs, so training would stop "
     "there; raise step_size to at least 8 or raise gamma, or use lr_policy='fixed'"),
    (("step", 0.01, 0.1, None, 1000), 50_000, "5 epochs of 10000 batches",
     "the step learning-rate policy (gamma 0.1, step_size 1000) takes the rate below 1e-06 of "
     "its start 0.01 at iteration 7000, within the 50000 iterations it runs (5 epochs of 10000 "
     "batches), so training would stop there; raise step_size to at least 7143 or raise gamma, "
     "or use lr_policy='fixed'"),
    (("inv", 0.01, 1.0, 2.0), 5000, "5 epochs of 1000 batches",
     "the inv learning-rate policy (gamma 1.0, power 2.0) takes the rate below 1e-06 of its "
     "start 0.01 at iteration 1000, within the 5000 iterations it runs (5 epochs of 1000 "
     "batches), so training would stop there; lower gamma or power, or use lr_policy='fixed'"),
    (("inv", 0.5, 1.0, 1.0), 1_000_001, "",
     "the inv learning-rate policy (gamma 1.0, power 1.0) takes the rate below 1e-06 of its "
     "start 0.5 at iteration 1000000, within the 1000001 iterations it runs, so training would "
     "stop there; lower gamma or power, or use lr_policy='fixed'"),
])
def test_a_run_past_the_collapse_is_refused_saying_where_and_what_to_change(
        arguments, iterations, counted, message):
    policy = LRPolicy(*arguments)  # (name, base_lr, gamma, power, step_size)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        policy.check_iterations(iterations, counted)
    if not counted:  # the count's origin is optional
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            policy.check_iterations(iterations)
