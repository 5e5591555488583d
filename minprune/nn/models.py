"""The paper's four networks, with layer names that match its Tables 2-5.

- ``lenet_300_100``: fully connected 784-300-100-10 with ReLU; 266,610 parameters.
- ``lenet5``: Caffe's LeNet-5 variant (paper-notes): conv1 20 5x5 -> max-pool 2 -> conv2 50 5x5 ->
  max-pool 2 -> fc1 800->500 + ReLU -> fc2 500->10. No ReLU after the convolutions, as in Caffe's
  ``lenet_train_test.prototxt``; 431,080 parameters.
- ``alexnet``: Caffe's AlexNet (Sec. 4.2, "the AlexNet Caffe model"); 60,965,224 parameters.
- ``vgg16``: VGG-16 (Simonyan & Zisserman 2015, configuration D; Sec. 4.3); 138,357,544
  parameters.

All are ``Sequential`` so a reader (and the sparse engine) can walk the layers in order. The
LeNets take (N, 1, 28, 28) images scaled to [0, 1]; AlexNet (N, 3, 227, 227) and VGG-16
(N, 3, 224, 224) mean-subtracted crops.

``describe_layers(model)`` writes any ``Sequential`` of minprune's layers as JSON-ready data (the
layer sequence a sparse file stores) and ``build_from_layers`` builds the model back from it.
"""

import math
import re
from collections import OrderedDict

import numpy as np

import minprune.base.random as minprune_random
from minprune.nn import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Sequential,
)

__all__ = [
    "lenet_300_100",
    "lenet5",
    "alexnet",
    "vgg16",
    "build",
    "MODELS",
    "describe_layers",
    "described_parameter_shapes",
    "build_from_layers",
]


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


def _check_num_classes(model: str, num_classes) -> None:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{model}: num_classes must be an int >= 1, got {num_classes!r}")


def alexnet(num_classes: int = 1000, dropout: float = 0.5) -> Sequential:
    """Caffe's AlexNet, the network of the paper's Table 4, for (N, 3, 227, 227) inputs.

    conv1 96 11x11 stride 4 -> ReLU -> LRN -> max-pool 3/2; conv2 256 5x5 pad 2, 2 groups ->
    ReLU -> LRN -> max-pool 3/2; conv3 384 3x3 pad 1 -> ReLU; conv4 384 3x3 pad 1, 2 groups ->
    ReLU; conv5 256 3x3 pad 1, 2 groups -> ReLU -> max-pool 3/2; fc1 9216->4096 -> ReLU ->
    dropout; fc2 4096->4096 -> ReLU -> dropout; fc3 4096->``num_classes``. LRN is across 5
    channels with alpha 1e-4, beta 0.75, k 1. 60,965,224 parameters; with the groups, each
    layer's weights are Table 4's (conv1 35K ... fc1 38M).

    Names: the weighted layers are Table 4's, conv1-conv5 and fc1-fc3; fc1, fc2, fc3 are Caffe's
    fc6, fc7, fc8. The unweighted layers keep Caffe's names, numbered by the layer they follow
    (relu6 and drop6 follow fc1, AlexNet's sixth layer). ``dropout`` 0 leaves the dropouts out.

    Departures, and what was not checked:

    - Pooling: Caffe rounds a pooled size up, minprune down; for 55 -> 27 -> 13 -> 6 the two agree.
    - Order: ReLU -> LRN -> pool, as in Krizhevsky et al. 2012 and Caffe's ``bvlc_alexnet``;
      Caffe's other ImageNet model, ``bvlc_reference_caffenet``, pools before it normalises. The
      paper names neither; the parameter counts are the same.
    - Initialisation: Caffe's ``bvlc_alexnet`` fillers (`_CAFFE_ALEXNET_FILLERS`): Gaussian
      weights, std 0.01 (0.005 for fc1, fc2), biases 0 or 0.1. (minprune's ``xavier`` filler
      keeps activations at the inputs' scale, 0-255 minus the mean, and the loss explodes.)
      Caffe also trains biases at twice the rate and without weight decay; minprune does not.
    """
    _check_num_classes("alexnet", num_classes)
    layers = OrderedDict(
        conv1=Conv2d(3, 96, kernel_size=11, stride=4),
        relu1=ReLU(),
        norm1=LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),
        pool1=MaxPool2d(3, 2),
        conv2=Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
        relu2=ReLU(),
        norm2=LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),
        pool2=MaxPool2d(3, 2),
        conv3=Conv2d(256, 384, kernel_size=3, padding=1),
        relu3=ReLU(),
        conv4=Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
        relu4=ReLU(),
        conv5=Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
        relu5=ReLU(),
        pool5=MaxPool2d(3, 2),
        flatten=Flatten(),
    )
    for number, (name, in_features) in enumerate((("fc1", 256 * 6 * 6), ("fc2", 4096)), 6):
        layers[name] = Linear(in_features, 4096)
        layers[f"relu{number}"] = ReLU()
        if dropout:
            layers[f"drop{number}"] = Dropout(dropout)
    layers["fc3"] = Linear(4096, num_classes)
    model = Sequential(layers)
    _fill_gaussian(model, _CAFFE_ALEXNET_FILLERS)
    return model


# Caffe's models/bvlc_alexnet/train_val.prototxt: (weight std, bias value) of each layer.
_CAFFE_ALEXNET_FILLERS = {
    "conv1": (0.01, 0.0), "conv2": (0.01, 0.1), "conv3": (0.01, 0.0), "conv4": (0.01, 0.1),
    "conv5": (0.01, 0.1), "fc1": (0.005, 0.1), "fc2": (0.005, 0.1), "fc3": (0.01, 0.0),
}


def _fill_gaussian(model: Sequential, fillers: dict) -> None:
    """Draw each named layer's weights from N(0, std^2) (the global generator) and set its bias."""
    rng = minprune_random.generator()
    for name, (std, bias) in fillers.items():
        layer = getattr(model, name)
        layer.weight.data[...] = rng.normal(0.0, std, layer.weight.shape)
        layer.bias.data[...] = bias


# VGG-16's convolutions, block by block (Simonyan & Zisserman 2015, Table 1, column D).
_VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16(num_classes: int = 1000, dropout: float = 0.5) -> Sequential:
    """VGG-16, the network of the paper's Table 5, for (N, 3, 224, 224) inputs.

    Five blocks of 3x3 convolutions (padding 1) with ReLU, each block ending in a 2x2 max-pool:
    64, 64 | 128, 128 | 256 x 3 | 512 x 3 | 512 x 3; then fc6 25088->4096 -> ReLU -> dropout;
    fc7 4096->4096 -> ReLU -> dropout; fc8 4096->``num_classes``. 138,357,544 parameters. Names
    are Table 5's (conv1_1 ... conv5_3, fc6, fc7, fc8), which are also Caffe's. ``dropout`` 0
    leaves the dropouts out. Weights start from minprune's ``xavier`` filler.
    """
    _check_num_classes("vgg16", num_classes)
    layers, in_channels = OrderedDict(), 3
    for block, widths in enumerate(_VGG16_BLOCKS, 1):
        for index, width in enumerate(widths, 1):
            layers[f"conv{block}_{index}"] = Conv2d(in_channels, width, kernel_size=3, padding=1)
            layers[f"relu{block}_{index}"] = ReLU()
            in_channels = width
        layers[f"pool{block}"] = MaxPool2d(2, 2)
    layers["flatten"] = Flatten()
    for name, in_features in (("fc6", 512 * 7 * 7), ("fc7", 4096)):
        layers[name] = Linear(in_features, 4096)
        layers[name.replace("fc", "relu")] = ReLU()
        if dropout:
            layers[name.replace("fc", "drop")] = Dropout(dropout)
    layers["fc8"] = Linear(4096, num_classes)
    return Sequential(layers)


MODELS = {"lenet-300-100": lenet_300_100, "lenet5": lenet5, "alexnet": alexnet, "vgg16": vgg16}


def build(name: str, **options) -> Sequential:
    """A model by its command-line name (``lenet-300-100``, ``lenet5``, ``alexnet``, ``vgg16``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**options)


# -- architecture descriptions: the layer sequence a sparse file stores to rebuild its model -------


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _offset(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _flag(value) -> bool:
    return isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# Each described layer type: its constructor's arguments and what each must be. The description
# of a layer is {"name": ..., "type": ...} plus these (Sequential: "layers", its own list).
_FIELDS = {
    Linear: {"in_features": (_count, "an int >= 1"), "out_features": (_count, "an int >= 1"),
             "bias": (_flag, "true or false")},
    Conv2d: {"in_channels": (_count, "an int >= 1"), "out_channels": (_count, "an int >= 1"),
             "kernel_size": (_count, "an int >= 1"), "stride": (_count, "an int >= 1"),
             "padding": (_offset, "an int >= 0"), "groups": (_count, "an int >= 1"),
             "bias": (_flag, "true or false")},
    MaxPool2d: {"kernel_size": (_count, "an int >= 1"), "stride": (_count, "an int >= 1")},
    LocalResponseNorm: {"size": (_count, "an int >= 1"), "alpha": (_number, "a number"),
                        "beta": (_number, "a number"), "k": (_number, "a number")},
    Dropout: {"p": (_number, "a number"), "original_p": (_number, "a number")},
    ReLU: {},
    Flatten: {},
}
_TYPES = {kind.__name__: kind for kind in (*_FIELDS, Sequential)}
MAX_DEPTH = 8  # nested Sequentials (from_torch makes a few levels)
MAX_LAYERS = 10_000  # VGG-16 has 39
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")


def describe_layers(model: Sequential) -> list[dict]:
    """The layer sequence of ``model`` as JSON-ready dicts, in order: each layer's name, type and
    constructor arguments (Linear: in_features, out_features, bias; Conv2d: in_channels,
    out_channels, kernel_size, stride, padding, groups, bias; MaxPool2d: kernel_size, stride;
    LocalResponseNorm: size, alpha, beta, k; Dropout: p, original_p; a nested Sequential: its own
    "layers"). No weights: `build_from_layers` rebuilds the model, `minprune.sparse.save_sparse`
    stores the description beside the pruned weights. Exact types only: any other layer (a
    subclass too) is a ValueError naming it."""
    if type(model) is not Sequential:
        raise ValueError(f"describe_layers: expected a minprune.nn.Sequential, got "
                         f"{type(model).__name__}")
    described = [_describe(name, layer, name) for name, layer in model._modules.items()]
    try:
        _check_layers(described, "layers", 0, [])  # what a reader would refuse, refused now
    except ValueError as error:
        raise ValueError(f"describe_layers: {error}") from None
    return described


def _describe(name: str, layer, path: str) -> dict:
    kind = type(layer)
    entry = {"name": name, "type": kind.__name__}
    if kind is Sequential:
        entry["layers"] = [_describe(child, module, f"{path}.{child}")
                           for child, module in layer._modules.items()]
        return entry
    if kind not in _FIELDS:
        raise ValueError(f"describe_layers: layer '{path}' is a {kind.__name__}; a description "
                         f"holds only {', '.join(_TYPES)}")
    for field in _FIELDS[kind]:
        value = layer.bias is not None if field == "bias" else getattr(layer, field)
        entry[field] = value.item() if isinstance(value, np.generic) else value  # JSON-ready
    return entry


def _check_layers(layers, path: str, depth: int, seen: list) -> None:
    """Check a (possibly hostile) description; a ValueError names the entry and the field."""
    if not isinstance(layers, list):
        raise ValueError(f"{path}: expected a list of layers, got {type(layers).__name__}")
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: Sequentials nested deeper than {MAX_DEPTH}")
    names = set()
    for index, entry in enumerate(layers):
        where = f"{path}[{index}]"
        seen.append(entry)
        if len(seen) > MAX_LAYERS:
            raise ValueError(f"{path}: more than {MAX_LAYERS} layers")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
        name, type_name = entry.get("name"), entry.get("type")  # any JSON, lists included
        kind = _TYPES.get(type_name) if isinstance(type_name, str) else None
        if (not isinstance(name, str) or not _NAME.fullmatch(name) or hasattr(Sequential, name)
                or name in ("training", "name")):
            raise ValueError(f"{where}.name: expected letters, digits and _ (not a Module "
                             f"attribute), got {name!r}")
        if name in names:
            raise ValueError(f"{where}.name: {name!r} appears twice")
        names.add(name)
        if kind is None:
            raise ValueError(f"{where}.type: expected one of {sorted(_TYPES)}, got "
                             f"{entry.get('type')!r}")
        fields = {"layers"} if kind is Sequential else set(_FIELDS[kind])
        if set(entry) != fields | {"name", "type"}:
            raise ValueError(f"{where}: a {kind.__name__} has the fields {sorted(fields)}, got "
                             f"{sorted(set(entry) - {'name', 'type'})}")
        if kind is Sequential:
            _check_layers(entry["layers"], f"{where}.layers", depth + 1, seen)
            continue
        for field, (check, expected) in _FIELDS[kind].items():
            if not check(entry[field]):
                raise ValueError(f"{where}.{field}: expected {expected}, got {entry[field]!r}")
        if kind is Conv2d and (entry["in_channels"] % entry["groups"]
                               or entry["out_channels"] % entry["groups"]):
            raise ValueError(f"{where}: channels not divisible by groups={entry['groups']}")
        if kind is Dropout and not (0 <= entry["p"] < 1 and 0 <= entry["original_p"] < 1):
            raise ValueError(f"{where}: dropout ratios must be in [0, 1), got p={entry['p']!r}, "
                             f"original_p={entry['original_p']!r}")


def described_parameter_shapes(layers, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """``{"fc1.weight": (300, 784), "fc1.bias": (300,), ...}``: the parameters a (checked)
    description gives, found without building anything (a file's claims are compared with its
    arrays before any layer allocates its weights). A malformed description is a ValueError
    naming the entry and the field."""
    if not prefix:
        _check_layers(layers, "layers", 0, [])
    shapes = {}
    for entry in layers:
        kind, name = _TYPES[entry["type"]], prefix + entry["name"]
        if kind is Sequential:
            shapes |= described_parameter_shapes(entry["layers"], name + ".")
        elif kind is Linear:
            shapes[name + ".weight"] = (entry["out_features"], entry["in_features"])
        elif kind is Conv2d:
            kernel = entry["kernel_size"]
            shapes[name + ".weight"] = (entry["out_channels"],
                                        entry["in_channels"] // entry["groups"], kernel, kernel)
        if kind in (Linear, Conv2d) and entry["bias"]:
            shapes[name + ".bias"] = (shapes[name + ".weight"][0],)
    return shapes


def build_from_layers(layers) -> Sequential:
    """The ``Sequential`` a `describe_layers` description gives, its weights freshly initialised
    and unpruned (load a state_dict into it). Nothing is drawn from minprune's global generator:
    the runs that follow are as without the build. A malformed description is a ValueError."""
    described_parameter_shapes(layers)  # checks every field first
    state = minprune_random.get_rng_state()
    try:
        return _build(layers)
    finally:
        minprune_random.set_rng_state(state)


def _build(layers) -> Sequential:
    modules = OrderedDict()
    for entry in layers:
        kind = _TYPES[entry["type"]]
        arguments = {field: entry[field] for field in _FIELDS.get(kind, ())}
        if kind is Sequential:
            modules[entry["name"]] = _build(entry["layers"])
        elif kind is Dropout:
            modules[entry["name"]] = layer = Dropout(arguments["original_p"])
            layer.p = arguments["p"]
        else:
            modules[entry["name"]] = kind(**arguments)
    return Sequential(modules)
