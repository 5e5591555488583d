"""Bridges from minprune to other frameworks; optional, and imported by nothing else in minprune.

    torch.py    to_torch / from_torch: minprune models as ``torch.nn`` modules and back, masks
                through ``torch.nn.utils.prune`` (``pip install "minprune[torch]"``)

This file imports nothing, so ``import minprune`` never needs PyTorch; import the bridge itself:
``from minprune.interop.torch import to_torch, from_torch``.
"""

__all__: list[str] = []
