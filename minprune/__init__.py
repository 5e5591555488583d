"""minprune: Han et al. 2015, "Learning both Weights and Connections for Efficient Neural
Networks", from scratch in NumPy and Numba.

The data flow, one subpackage per step: ``data`` -> ``nn``/``models`` (layers whose weights carry a
``weight_mask``) -> ``optim``/``train`` -> ``prune`` -> ``sparse`` (CSR export and kernels).
"""

from minprune.random import manual_seed
from minprune.tensor import Tensor, no_grad

__version__ = "0.1.0"

__all__ = ["Tensor", "no_grad", "manual_seed", "__version__"]
