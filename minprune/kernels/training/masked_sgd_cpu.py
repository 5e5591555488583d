"""The fused masked SGD-momentum update as a raw-array Numba kernel (CPU).

The optimiser's step for a pruned weight (`minprune.training.optim.SGD`): the mask acts on the
update, so neither momentum nor weight decay can revive a pruned connection (Han et al. 2015, Sec.
3: pruned connections are removed for good). Plain Python jitted by assignment;
``NUMBA_DISABLE_JIT=1`` runs it as Python. No checks here -- `minprune.kernels.training.masked_sgd`
validates first. """

from __future__ import annotations

from numba import njit

__all__ = ["masked_sgd_momentum_cpu"]


def _masked_sgd_momentum(weight, velocity, grad, mask, lr, momentum, weight_decay, l1):
    """One fused, in-place pass over flat (1-D) arrays; every element independent:

    g = grad + weight_decay * w + l1 * sign(w);  v = momentum * v + g;  w -= lr * v
    and where mask == 0: w = 0, v = 0 (so momentum cannot revive a pruned weight).
    The body is branch-free (the mask and sign(w) become selects), so LLVM vectorises it.
    """
    zero = weight.dtype.type(0.0)
    one = weight.dtype.type(1.0)
    for i in range(weight.shape[0]):
        keep = mask[i] != 0
        w = weight[i]
        sign = (one if w > zero else zero) - (one if w < zero else zero)
        v = momentum * velocity[i] + (grad[i] + weight_decay * w + l1 * sign)
        velocity[i] = v if keep else zero
        weight[i] = (w - lr * v) if keep else zero


# One thread on purpose: the update runs between BLAS calls, and on 2 cores a parallel Numba
# region beside OpenBLAS's spinning workers waits on descheduled threads (README, "Training speed").
masked_sgd_momentum_cpu = njit(cache=True)(_masked_sgd_momentum)
