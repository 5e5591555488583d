"""minprune: Han, Pool, Tran and Dally 2015, "Learning both Weights and Connections for Efficient
Neural Networks", from scratch in NumPy and Numba.

    import minprune as mp

    train, test = mp.data.mnist()
    model = mp.models.lenet_300_100()
    mp.fit_phase(model, train, test, mp.Phase(epochs=20))
    mp.prune.threshold_prune(model, {"fc1.weight": 2.0, "*": 1.0})   # |w| < quality x std
    mp.prune.retrain(model, train, test, mp.Phase(epochs=8, lr=0.001))
    network = mp.inference.compile_model(model)                     # CSR weights, Numba kernels

The folders are the data flow: ``base`` and ``kernels`` (leaves) -> ``data`` -> ``autograd``
(``Tensor``, ``functional``) -> ``nn`` (layers, ``models``) -> ``training`` (``optim``, ``Phase``,
``fit``) -> ``prune`` -> ``sparse`` (CSR storage) and ``compress`` (Deep Compression's weight
sharing and Huffman coding) -> ``inference`` (the engine) -> ``commands``.
This file only gathers their public names; no module of the package imports it.
"""

from minprune import compress, data, inference, nn, prune, sparse
from minprune.autograd import functional
from minprune.autograd.gradcheck import gradcheck
from minprune.autograd.tensor import Function, Tensor, no_grad
from minprune.base import paper
from minprune.base.random import manual_seed
from minprune.base.settings import fast_mode, set_backend, use_backend
from minprune.nn import copy_model, models
from minprune.prune import recipes
from minprune.training import optim
from minprune.training.fit import evaluate, fit, fit_phase
from minprune.training.phase import Phase
from minprune.training.schedules import LRPolicy

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "Function",
    "no_grad",
    "gradcheck",
    "manual_seed",
    "fast_mode",
    "set_backend",
    "use_backend",
    "copy_model",
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
    "compress",
    "inference",
    "paper",
    "recipes",
    "__version__",
]
