"""``minprune compress MODEL``: Deep Compression's three stages on a LeNet, end to end, resumable.

Han, Mao & Dally (ICLR 2016) follow pruning (this paper) with trained quantization and Huffman
coding, and shrink LeNet-300-100 from 1070 KB to 27 KB (40x, 1.58% error) and LeNet-5 from
1720 KB to 44 KB (39x, 0.74%). The stages, one function each, saved under ``WORK`` (default
``runs/compress-MODEL``) so that a killed run picks up where it stopped:

1. **start** -- the pruned model (`compress_start`: reproduce's baseline and paper stages on the
   first 55,000 training images; or ``--checkpoint``);
2. **bits** -- each layer shared alone at 1..8 bits, validation error without retraining; each
   layer gets the fewest bits within ``--tolerance`` of the pruned model's validation error
   (`minprune.compress.search`);
3. **quantize** -- every layer shared at its bits (k-means, linear initialisation) and the
   centroids retrained by Eq. 3 (`minprune.compress.retrain_quantized`; fingerprinted checkpoint
   ``WORK/quantized-BITS-bits.npz``, one per choice of bits);
4. **write** -- the file (`minprune.compress.save_compressed`), read back, loaded into the sparse
   engine (`minprune.inference.compile_model`), and the test set read once, there.

Every choice is made on the validation split (the last 5,000 training images); the test error is
measured once, on the file's model, at the end. Outputs in ``results/MODEL/compress/``:
``summary.json`` (every number, the command, seconds, the machine), ``table.txt`` (Deep
Compression's Tables 2-3 layout), ``bits.png`` and ``tradeoff.png`` (`compress_report`) and the
compressed file itself, ``MODEL.mpz``. Another ``--tolerance`` writes ``compress-tolerance-T/``.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from minprune.base.settings import fast_mode
from minprune.commands.compress_report import plot_bits, plot_tradeoff, stage_sizes, table
from minprune.commands.compress_start import pruned_start
from minprune.compress.file_format import read_compressed, save_compressed
from minprune.compress.search import (
    bits_sweep,
    choose_bits,
    coded_weight_bytes,
    quantization_curve,
)
from minprune.compress.trained_quantization import retrain_quantized
from minprune.compress.weight_sharing import share_weights
from minprune.data.dataset import subset, validation_split
from minprune.data.mnist_loader import mnist
from minprune.inference.engine import compile_model
from minprune.nn.module import copy_model
from minprune.prune.recipes import RECIPES, fast_recipe
from minprune.training.checkpoint import save_json
from minprune.training.fit import evaluate
from minprune.training.phase import Phase

__all__ = ["compress", "Settings", "SETTINGS", "engine_error"]


@dataclass(frozen=True)
class Settings:
    """What ``compress`` does beyond the pruning recipe: the validation split, the bits tried,
    the tolerance they are chosen with, and the quantized retraining."""

    validation_size: int = 5000
    bits: tuple = (1, 2, 3, 4, 5, 6, 7, 8)
    # a layer's bits: the fewest whose validation error (that layer shared alone, no retraining)
    # is at most the pruned model's + this
    tolerance: float = 0.002
    # the centroids retrain at 1/10 of the recipe's retraining rate, itself 1/10 of training's:
    # the sum of Eq. 3 adds up thousands of gradients per centroid
    retrain: Phase = Phase(epochs=4, lr=0.0005, lr_policy="fixed")


SETTINGS = {
    "lenet-300-100": Settings(),
    "lenet5": Settings(retrain=Phase(epochs=4, lr=0.0002, lr_policy="fixed")),
}
DEEP_COMPRESSION = {  # Han, Mao & Dally 2016, Tables 2 and 3 (totals)
    "lenet-300-100": {"kilobytes": (1070, 27), "compression": 40, "error": (0.0164, 0.0158)},
    "lenet5": {"kilobytes": (1720, 44), "compression": 39, "error": (0.0080, 0.0074)},
}


def _fast(settings: Settings) -> Settings:
    return replace(settings, validation_size=1000, bits=(2, 4, 6),
                   retrain=replace(settings.retrain, epochs=1))


def engine_error(path, dataset, batch: int = 1000) -> tuple[float, object]:
    """Test error of the model in the compressed file at ``path``, run by the sparse engine
    (`minprune.inference.compile_model`); and the compiled network."""
    loaded = read_compressed(path)
    network = compile_model(loaded.model, input_shape=loaded.input_shape)
    wrong = 0
    for start in range(0, len(dataset), batch):
        logits = np.asarray(network(dataset.images[start:start + batch]))
        wrong += int((logits.argmax(axis=1) != dataset.labels[start:start + batch]).sum())
    return wrong / len(dataset), network


def compress(name: str, *, results_dir="results", work_dir=None, fast=None, data_dir=None,
             checkpoint=None, tolerance=None, progress=False, log=print, command=None) -> dict:
    """Run every stage for ``name`` ("lenet-300-100" or "lenet5"); return the summary."""
    if name not in SETTINGS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(SETTINGS)}")
    started = time.perf_counter()
    fast = fast_mode() if fast is None else fast
    recipe = fast_recipe(RECIPES[name]) if fast else RECIPES[name]
    settings = _fast(SETTINGS[name]) if fast else SETTINGS[name]
    if tolerance is not None:
        settings = replace(settings, tolerance=tolerance)
    work = Path(work_dir or f"runs/compress-{name}{'-fast' if fast else ''}")
    folder = "compress" if tolerance is None else f"compress-tolerance-{tolerance:g}"
    out = Path(results_dir) / (f"{name}-fast" if fast else name) / folder
    out.mkdir(parents=True, exist_ok=True)
    train_set, test_set = mnist(data_dir)
    if fast:
        train_set, test_set = subset(train_set, 6000), subset(test_set, 2000)
    train_set, validation = validation_split(train_set, settings.validation_size)
    seconds = {}

    # 1. the pruned starting point
    mark = time.perf_counter()
    pruned, baseline, start = pruned_start(recipe, train_set, validation, work / "start",
                                 checkpoint=checkpoint, progress=progress, log=log)
    pruned_error = evaluate(pruned, validation)["error"]
    seconds["start"] = time.perf_counter() - mark

    # 2. bits per layer, on validation
    mark = time.perf_counter()
    sweep = bits_sweep(pruned, validation, settings.bits)
    bits = choose_bits(sweep, pruned_error, settings.tolerance)
    log(f"bits per layer (validation error within {settings.tolerance:.2%} of the pruned "
        f"model's {pruned_error:.2%}, each layer alone): {bits}")
    seconds["bits"] = time.perf_counter() - mark

    # 3. share and retrain the centroids
    mark = time.perf_counter()
    quantized = copy_model(pruned)
    codebooks = share_weights(quantized, bits)
    shared_error = evaluate(quantized, validation)["error"]
    log(f"all layers shared: validation error {shared_error:.2%} before retraining")
    checkpoint_name = "quantized-" + "-".join(str(b) for b in bits.values()) + "-bits.npz"
    history = retrain_quantized(quantized, codebooks, train_set, validation, settings.retrain,
                                seed=recipe.seed, checkpoint=work / checkpoint_name,
                                progress=progress, log=log)
    quantized_error = evaluate(quantized, validation)["error"]
    seconds["quantize"] = time.perf_counter() - mark

    # 4. the file, read back and run by the sparse engine; the test set, once
    mark = time.perf_counter()
    path = out / f"{name}.mpz"
    parts = save_compressed(path, quantized, codebooks, input_shape=(1, 28, 28))
    test_error, _ = engine_error(path, test_set)
    seconds["write"] = time.perf_counter() - mark

    dense_bytes = 4 * sum(p.data.size for p in pruned.parameters())
    rows, text = table(quantized, codebooks, parts, dense_bytes, parts["layers"])
    stages = stage_sizes(pruned, parts, codebooks, dense_bytes)
    curves = _tradeoff(pruned, baseline, validation, settings.bits)
    plot_bits(sweep, pruned_error, bits, out / "bits.png", name)
    plot_tradeoff(curves, dense_bytes, (dense_bytes / parts["file"], quantized_error),
                  out / "tradeoff.png", name)
    (out / "table.txt").write_text(text)
    summary = {
        "model": name, "fast": fast,
        "command": command or f"minprune compress {name}" + (" --fast" if fast else ""),
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "start": start,
        "validation": {"images": len(validation), "pruned_error": pruned_error,
                       "shared_error_before_retraining": shared_error,
                       "quantized_error": quantized_error},
        "test_error": test_error, "test_images": len(test_set),
        "test_read": "once, on the model read back from the file, by the sparse engine",
        "dense_bytes": dense_bytes, "file_bytes": parts["file"],
        "compression": dense_bytes / parts["file"],
        "target": {"compression": 50, "error": DEEP_COMPRESSION[name]["error"][0]},
        "deep_compression": DEEP_COMPRESSION[name],
        "bits": bits, "tolerance": settings.tolerance, "sweep": sweep,
        "layers": rows, "parts": parts, "stages": stages, "tradeoff": curves,
        "retrain": {"phase": asdict(settings.retrain), "history": history},
        "seconds": seconds, "wall_seconds_this_run": time.perf_counter() - started,
        "seconds_are": ("this run's wall time per stage: a stage resumed from WORK only loads; "
                        "start.training_seconds and retrain.history hold the training times"),
    }
    save_json(out / "summary.json", summary)
    log(f"{name}: {parts['file']:,} bytes on disk, {summary['compression']:.1f}x smaller than "
        f"the dense float32 weights ({dense_bytes:,} bytes); test error {test_error:.2%} "
        f"(validation {quantized_error:.2%}); wrote {out}")
    return summary


def _tradeoff(pruned, baseline, validation, bits) -> dict:
    """Fig. 6's question: every layer at the same bits, pruned or dense (no retraining). The
    pruned model's bytes are its compressed file's; the dense model's, its Huffman-coded weights
    with no positions (`coded_weight_bytes`)."""
    with tempfile.TemporaryDirectory() as folder:
        def file_bytes(model, codebooks):
            return save_compressed(Path(folder) / "curve.mpz", model, codebooks)["file"]

        curves = {"pruning + quantization": quantization_curve(pruned, validation, bits,
                                                               size_of=file_bytes)}
    if baseline is not None:
        curves["quantization only"] = quantization_curve(baseline, validation, bits,
                                                         size_of=coded_weight_bytes)
    return curves


def main_command(args) -> int:
    """Entry for ``minprune compress`` (see ``minprune.commands.cli``)."""
    compress(args.model, results_dir=args.results, work_dir=args.work,
             fast=True if args.fast else None, data_dir=args.data, checkpoint=args.checkpoint,
             tolerance=args.tolerance, progress=False if args.no_progress else None,
             command="minprune " + shlex.join(args.argv))
    return 0
