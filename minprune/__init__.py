"""minprune: Han, Pool, Tran and Dally 2015, "Learning both Weights and Connections for Efficient
Neural Networks", from scratch in NumPy and Numba.

    import minprune as mp

    train, test = mp.data.mnist()
    model = mp.models.lenet_300_100()
    mp.fit_phase(model, train, test, mp.Phase(epochs=20))
    mp.prune.threshold_prune(model, {"fc1.weight": 2.0, "*": 1.0})   # |w| < quality x std
    mp.prune.retrain(model, train, test, mp.Phase(epochs=8, lr=0.001))
    network = mp.sparse.compile_model(model)                          # CSR weights, Numba kernels

The subpackages follow the data flow: ``data`` -> autograd (``Tensor``, ``functional``) -> ``nn``
and ``models`` -> training (``optim``, ``Phase``, ``fit``) -> ``prune`` -> ``sparse`` (CSR storage,
kernels, the inference engine). This file only gathers their public names; no module of the
package imports it.
"""

from minprune import data, functional, models, nn, optim, paper, prune, recipes, sparse
from minprune.gradcheck import gradcheck
from minprune.phase import Phase
from minprune.random import manual_seed
from minprune.schedules import LRPolicy
from minprune.settings import fast_mode
from minprune.tensor import Function, Tensor, no_grad
from minprune.train import evaluate, fit, fit_phase

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "Function",
    "no_grad",
    "gradcheck",
    "manual_seed",
    "fast_mode",
    "data",
    "functional",
    "nn",
    "models",
    "optim",
    "Phase",
    "LRPolicy",
    "fit",
    "fit_phase",
    "evaluate",
    "prune",
    "sparse",
    "paper",
    "recipes",
    "__version__",
]
