"""Winning tickets on LeNet-300-100 against Han et al.'s Sec. 3.3: Frankle & Carbin's Figs. 3-4.

    MINPRUNE_DATA=/work/shared/data/mnist OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        NUMBA_NUM_THREADS=1 nice -n 19 python benchmarks/tickets.py

One dense training of LeNet-300-100 on MNIST (snapshots at iteration 0 and at ``--k``), then
``--rounds`` rounds of iterative magnitude pruning (`minprune.prune.tickets.imp`), each pruning
50% of the survivors of fc1 and fc2 and 25% of fc3's (Frankle & Carbin prune 20% and 10% a round;
we take bigger steps so that six rounds reach ~1.7% on 2 cores: 100, 50.2, 25.2, 12.7, 6.4, 3.3,
1.7% of the weights), four ways:

1. fine-tune: survivors keep their trained values, retrained at 1/10 of the rate (Han et al.
   Sec. 3.3 and 4.1);
2. rewind to 0: survivors back to their initial values (Frankle & Carbin 2019);
3. rewind to k: survivors back to their values at iteration k (Frankle et al. 2020);
4. random re-init: the masks of line 2, trained from a fresh initialisation (Sec. 3.3's claim).

Every training is measured every 100 iterations on a validation split (the last 5,000 training
images, never trained on); a point is the test error of the weights at the best validation error
(the test set read once per point) and that iteration. SGD (momentum 0.9, fixed rate 0.01, batch
60, no weight decay) for ``--epochs`` epochs per training, not their Adam for 50K iterations;
one seed a run (``--seed``; the committed runs: 0, and 1 with ``--out results/tickets/seed1``).
Writes results/tickets/tickets.json (command, machine, schedule, every point with its validation
curve) and results/tickets/tickets.png. ``--fast``: a data subset and two rounds, for
a smoke test (written to results/tickets/fast/); ``--plot-only`` redraws the figure from the
record.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import minprune as mp
from minprune.data.dataset import subset, validation_split
from minprune.prune import tickets
from minprune.training.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RATES = {"fc3.weight": 0.25, "*": 0.5}
# One BLAS/Numba thread a process: on 2 cores shared with other jobs, two spinning threads made
# each step 15x slower (34 against 1.5 ms of CPU a step, measured at a load of 9).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--k", type=int, default=500, help="the rewinding iteration of line 3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw tickets.png from the tickets.json already in the folder")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "results" / "tickets" / ("fast" if args.fast else "")
    out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        record = json.loads((out / "tickets.json").read_text())
        _plot(record["lines"], out, record["schedule"]["train"]["epochs"])
        return 0

    train_all, test = mp.data.mnist()
    train, validation = validation_split(train_all, 5000)
    if args.fast:
        train, validation, test = subset(train, 5000), subset(validation, 1000), subset(test, 2000)
        args.epochs, args.rounds, args.k = min(args.epochs, 2), min(args.rounds, 2), 20
    phase = mp.Phase(epochs=args.epochs, lr=0.01, momentum=0.9, weight_decay=0.0,
                     lr_policy="fixed", batch_size=60)
    finetune = mp.Phase(epochs=args.epochs, lr=0.001, momentum=0.9, weight_decay=0.0,
                        lr_policy="fixed", batch_size=60)
    mp.manual_seed(args.seed)
    model = mp.models.lenet_300_100()
    sizes = {name: layer.weight_mask.size
             for name, layer in mp.prune.layers_by_weight_name(model).items()}
    started = time.perf_counter()
    lines = tickets.compare_resets(model, train, validation, test, phase=phase,
                                   finetune_phase=finetune, rates=RATES, rounds=args.rounds,
                                   k=args.k, every=100, seed=args.seed, log=print)
    seconds = time.perf_counter() - started
    threads = "".join(f"{name}={os.environ[name]} " for name in THREAD_VARIABLES
                      if name in os.environ)
    arguments = argv if argv is not None else sys.argv[1:]
    command = ("MINPRUNE_DATA=" + os.environ.get("MINPRUNE_DATA", "")
               + f" {threads}nice -n 19 python " + shlex.join(["benchmarks/tickets.py",
                                                                *arguments]))
    record = {
        "command": command,
        "machine": f"{os.cpu_count()} cores (shared; nice -n 19)",
        "threads": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        "seconds": round(seconds, 1),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "data": {"train": len(train), "validation": len(validation), "test": len(test),
                 "validation_is": "the last 5,000 MNIST training images" if not args.fast
                 else "1,000 of them (fast)"},
        "schedule": {
            "rates": RATES, "rounds": args.rounds, "k": args.k, "seed": args.seed,
            "evaluate_every": 100, "expected_remaining": tickets.remaining(sizes, RATES,
                                                                           args.rounds),
            "train": {"epochs": phase.epochs, "lr": phase.lr, "momentum": phase.momentum,
                      "weight_decay": phase.weight_decay, "lr_policy": phase.lr_policy,
                      "batch_size": phase.batch_size},
            "fine_tune": {"epochs": finetune.epochs, "lr": finetune.lr},
            "departures": "SGD with momentum, not Adam; 50%/25% of survivors a round, not "
                          "20%/10%; each training 15 epochs (about 13,750 iterations), not 50K; "
                          "one seed; a rewound run restarts at iteration 0 with zero velocity",
        },
        "lines": lines,
    }
    atomic_write_json(out / "tickets.json", record)
    _plot(lines, out, args.epochs)
    print(json.dumps({name: [(round(100 * p["density"], 1), round(100 * p["test_error"], 2),
                              p["early_stop_iteration"]) for p in points]
                      for name, points in lines.items()}, indent=1))
    return 0


def _plot(lines: dict, out: Path, epochs: int) -> None:
    caption = (f"MNIST, {epochs} epochs per training, one seed, 2 cores; test error at the "
               "iteration of best validation error (last 5,000 training images). "
               "python benchmarks/tickets.py")
    tickets.plot_tickets(lines, out / "tickets.png", caption=caption)


if __name__ == "__main__":
    raise SystemExit(main())
