"""Dropout for retraining (Han et al. Sec. 3.2, Eq. 2): D_r = D_o x sqrt(C_ir / C_io), and what
adjust_dropout says when it is not told a D_o. (Eq. 2 itself is pinned in test_retrain.py.)"""

import re

import pytest

from minprune.nn import models
from minprune.prune import adjust_dropout, keep_ratio_prune


def test_a_dropout_without_an_original_ratio_is_named_and_no_ratio_changes():
    model = models.lenet_300_100(dropout=0.5)
    keep_ratio_prune(model, 0.25)
    message = ("adjust_dropout: no original ratio for dropout 'drop2'; original_p has ['drop1'] "
               "(give D_o for every dropout, or None for the built ratios)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        adjust_dropout(model, {"drop1": 0.5})
    assert model.drop1.p == model.drop2.p == 0.5  # every D_o is checked before any p changes
