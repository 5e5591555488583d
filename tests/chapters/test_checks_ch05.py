"""Chapter 5's checks (chapters/checks/ch05.py) pass the reference answers and refuse plausible
wrong ones with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch05

import minprune as mp

# -- Exercise 1: CSR from a dense matrix ---------------------------------------------------------

def to_csr(dense, mask):
    indptr, indices, data = [0], [], []
    for row in range(dense.shape[0]):
        columns = np.flatnonzero(mask[row])
        indices.extend(columns)
        data.extend(dense[row, columns])
        indptr.append(len(indices))
    return np.array(indptr), np.array(indices, dtype=int), np.array(data, dtype=np.float32)


def to_csr_by_value(dense, mask):  # the values decide: a kept 0.0 is lost
    return to_csr(dense * mask, (dense * mask) != 0)


def to_csr_row_lengths(dense, mask):  # indptr holds each row's length, not where it starts
    indptr, indices, data = to_csr(dense, mask)
    return np.concatenate(([0], np.diff(indptr))), indices, data


def to_csr_no_leading_zero(dense, mask):
    indptr, indices, data = to_csr(dense, mask)
    return indptr[1:], indices, data


def to_csr_column_major(dense, mask):  # CSC's order: column by column
    columns = to_csr(dense.T, mask.T)
    rows, _ = np.nonzero(np.asarray(mask).T != 0)
    counts = np.count_nonzero(mask, axis=1)
    return np.concatenate(([0], np.cumsum(counts))), np.asarray(rows), columns[2]


def to_csr_wrong_order(dense, mask):  # (data, indices, indptr)
    indptr, indices, data = to_csr(dense, mask)
    return data, indices, indptr


def test_exercise_1_passes_the_reference(capsys):
    ch05.exercise_1(to_csr)
    assert "Exercise 1: correct" in capsys.readouterr().out


@pytest.mark.parametrize(("wrong", "named"), [
    (to_csr_by_value, "the mask decides"),
    (to_csr_row_lengths, "running total"),
    (to_csr_no_leading_zero, "rows + 1"),
    (to_csr_column_major, "row by row"),
    (to_csr_wrong_order, "(indptr, indices, data)"),
])
def test_exercise_1_refuses_wrong_answers(fails_with_hint, wrong, named):
    assert named in fails_with_hint(ch05.exercise_1, wrong)


def test_exercise_1_template_asks_for_an_answer():
    def template(dense, mask):
        raise NotImplementedError("Exercise 1: build indptr, indices and data")

    with pytest.raises(NotImplementedError):
        ch05.exercise_1(template)


# -- Exercise 2: the fillers of a row ------------------------------------------------------------

def steps_of(columns):
    return np.diff(np.concatenate(([-1], np.asarray(columns, dtype=np.int64))))


def count_fillers(columns, bits):
    return int(((steps_of(columns) - 1) // 2**bits).sum())


def test_exercise_2_passes_the_reference(capsys):
    ch05.exercise_2(count_fillers)
    assert "Exercise 2: correct" in capsys.readouterr().out


@pytest.mark.parametrize(("wrong", "named"), [
    # a step of exactly 2**b taken as an overflow
    (lambda columns, bits: int((steps_of(columns) // 2**bits).sum()), "hold the steps 1 .. 32"),
    # one filler per long step, however long
    (lambda columns, bits: int((steps_of(columns) > 2**bits).sum()), "more than one filler"),
    # the first survivor of a row counted from column 0, not from -1
    (lambda columns, bits: int(((np.diff(np.concatenate(([0], columns))) - 1) // 2**bits).sum()),
     "from the row start (previous = -1)"),
    # the first survivor of a row not counted at all
    (lambda columns, bits: int(((np.diff(columns) - 1) // 2**bits).sum()) if len(columns) else 0,
     "from the row start"),
    # every step measured from the row start (the walk never moves its position on)
    (lambda columns, bits: int((np.asarray(columns, dtype=np.int64) // 2**bits).sum()),
     "from the previous survivor"),
])
def test_exercise_2_refuses_wrong_answers(fails_with_hint, wrong, named):
    assert named in fails_with_hint(ch05.exercise_2, wrong)


# -- Exercise 3: the index width, chosen ---------------------------------------------------------

@pytest.fixture(scope="module")
def pruned_lenets():
    mp.manual_seed(0)
    lenet_300, lenet_5 = mp.models.lenet_300_100(), mp.models.lenet5()
    mp.prune.keep_ratio_prune(lenet_300, mp.paper.PAPER_KEEP_RATIOS["lenet-300-100"])
    mp.prune.keep_ratio_prune(lenet_5, mp.paper.PAPER_KEEP_RATIOS["lenet5"])
    return lenet_300, lenet_5


def best_index_bits(weight, mask):
    sizes = ch05.best_bytes_by_width(weight, mask)
    return min(sizes, key=sizes.get)


def test_exercise_3_passes_the_reference(capsys, pruned_lenets):
    ch05.exercise_3(best_index_bits, "above", *pruned_lenets)
    assert "Exercise 3: correct" in capsys.readouterr().out


def paper_bits(weight, mask):
    return mp.paper.PAPER_INDEX_BITS["conv" if np.ndim(weight) == 4 else "fc"]


def fewest_fillers(weight, mask):  # no overflow at all: the widest field
    return max(ch05.WIDTHS)


def fewest_bits_per_entry(weight, mask):  # fillers ignored
    return 1


def largest_on_tie(weight, mask):
    sizes = ch05.best_bytes_by_width(weight, mask)
    best = min(sizes.values())
    return max(bits for bits, size in sizes.items() if size == best)


def log2_mean_step(weight, mask):  # a rule of thumb: the field of the average step
    density = max(np.mean(np.asarray(mask) != 0), 1e-9)
    return int(min(max(np.ceil(np.log2(1 / density)), 1), 16))


@pytest.mark.parametrize(("wrong", "named"), [
    (paper_bits, "fixed choices"),
    (fewest_fillers, "fewest fillers is not fewest bytes"),
    (fewest_bits_per_entry, "each filler is a whole extra entry"),
    (log2_mean_step, "another width takes"),
])
def test_exercise_3_refuses_wrong_widths(fails_with_hint, pruned_lenets, wrong, named):
    assert named in fails_with_hint(ch05.exercise_3, wrong, "above", *pruned_lenets)


def test_exercise_3_wants_the_smaller_width_on_a_tie(fails_with_hint, pruned_lenets):
    assert "on a tie" in fails_with_hint(ch05.exercise_3, largest_on_tie, "above", *pruned_lenets)


@pytest.mark.parametrize("prediction", ["below", "at", "5 bits"])
def test_exercise_3_refuses_a_wrong_prediction(fails_with_hint, pruned_lenets, prediction):
    hint = fails_with_hint(ch05.exercise_3, best_index_bits, prediction, *pruned_lenets)
    assert "'below', 'at' or 'above'" in hint or "Why?" in hint


def test_exercise_3_template_asks_for_an_answer(pruned_lenets):
    with pytest.raises(NotImplementedError):
        ch05.exercise_3(best_index_bits, None, *pruned_lenets)
