"""The paper's two MNIST networks, with layer names that match its Tables 2 and 3.

- ``lenet_300_100``: fully connected 784-300-100-10 with ReLU; 266,610 parameters.
- ``lenet5``: Caffe's LeNet-5 variant (paper-notes): conv1 20 5x5 -> max-pool 2 -> conv2 50 5x5 ->
  max-pool 2 -> fc1 800->500 + ReLU -> fc2 500->10. No ReLU after the convolutions, as in Caffe's
  ``lenet_train_test.prototxt``; 431,080 parameters.

Both are ``Sequential`` so a reader (and the sparse engine) can walk the layers in order. Inputs are
(N, 1, 28, 28) images scaled to [0, 1].
"""

from collections import OrderedDict

from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential

__all__ = ["lenet_300_100", "lenet5", "build", "MODELS"]


def lenet_300_100(dropout: float = 0.0) -> Sequential:
    """LeNet-300-100. ``dropout`` > 0 adds dropout after each hidden layer (not in the paper's
    LeNet; there for the dropout-adjustment experiments)."""
    layers = OrderedDict(flatten=Flatten(), fc1=Linear(784, 300), relu1=ReLU())
    if dropout:
        layers["drop1"] = Dropout(dropout)
    layers.update(fc2=Linear(300, 100), relu2=ReLU())
    if dropout:
        layers["drop2"] = Dropout(dropout)
    layers["fc3"] = Linear(100, 10)
    return Sequential(layers)


def lenet5(dropout: float = 0.0) -> Sequential:
    """Caffe's LeNet-5. ``dropout`` > 0 adds dropout before fc2 (not in Caffe's LeNet)."""
    layers = OrderedDict(
        conv1=Conv2d(1, 20, kernel_size=5),
        pool1=MaxPool2d(2, 2),
        conv2=Conv2d(20, 50, kernel_size=5),
        pool2=MaxPool2d(2, 2),
        flatten=Flatten(),
        fc1=Linear(800, 500),
        relu1=ReLU(),
    )
    if dropout:
        layers["drop1"] = Dropout(dropout)
    layers["fc2"] = Linear(500, 10)
    return Sequential(layers)


MODELS = {"lenet-300-100": lenet_300_100, "lenet5": lenet5}


def build(name: str, **options) -> Sequential:
    """A model by its command-line name (``lenet-300-100`` or ``lenet5``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**options)
