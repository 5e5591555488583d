"""Mutation testing of the code that implements the paper and its storage: `make mutation`.

Would the tests catch a wrong line? mutmut (``pip install -e ".[mutation]"``) plants one small
mistake at a time -- ``>=`` for ``>``, a dropped ``*=``, a changed constant -- in the modules of
``GROUPS`` and runs the tests that cover the mutated function; a mutant the tests let through
*survived*. Each group runs in a scratch copy of the checkout (its ``mutants/`` folder never
touches the repository), the Numba kernels with ``NUMBA_DISABLE_JIT=1`` so that mutmut can
rewrite them as plain Python.

Writes ``results/mutation/summary.json`` (the command, date, machine, and per module: mutants,
killed, survived, score) and ``results/mutation/survivors.md`` (every survivor with its diff and
the reason it is harmless, from ``results/mutation/reasons.toml``). A survivor without a reason is
a gap in the tests: the run exits 1 and lists it.

    python tools/mutation.py                  # every group (about 10-20 minutes on 2 cores)
    python tools/mutation.py --group pruning  # one group
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "mutation"
REASONS = OUT / "reasons.toml"

# name: (modules to mutate, tests that may kill their mutants, extra environment)
GROUPS = {
    "pruning": (
        ["minprune/prune/masks.py", "minprune/prune/criteria.py", "minprune/prune/dropout.py",
         "minprune/prune/loop.py", "minprune/prune/retraining.py", "minprune/prune/rounds.py",
         "minprune/prune/gradual.py", "minprune/prune/surgery.py"],
        ["tests/prune", "tests/test_backends.py"],
        {},
    ),
    "training": (
        ["minprune/training/optim.py", "minprune/training/schedules.py",
         "minprune/autograd/plain.py", "minprune/autograd/fast.py",
         "minprune/autograd/ops/activation.py", "minprune/autograd/ops/arithmetic.py",
         "minprune/autograd/ops/conv.py", "minprune/autograd/ops/linear.py",
         "minprune/autograd/ops/pattern_linear.py", "minprune/autograd/ops/indexing.py"],
        ["tests/test_autograd.py", "tests/test_gradcheck_ops.py", "tests/test_optim.py",
         "tests/test_backends.py", "tests/test_conv_layouts.py", "tests/test_nn.py",
         "tests/kernels/test_generic.py", "tests/kernels/test_kernels_masked_sgd.py"],
        {},
    ),
    "kernels": (
        ["minprune/kernels/training/masked_sgd_cpu.py", "minprune/kernels/training/masked_sgd.py"],
        ["tests/kernels/test_kernels_masked_sgd.py", "tests/test_optim.py"],
        {"NUMBA_DISABLE_JIT": "1"},
    ),
    "storage": (
        ["minprune/sparse/csr.py", "minprune/sparse/export.py", "minprune/sparse/storage.py",
         "minprune/inference/engine_cpu.py"],
        ["tests/sparse"],
        {},
    ),
}


def _scratch_copy(target: Path) -> None:
    """The tracked files of the checkout, as they are in the working tree."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _config(modules: list[str], tests: list[str]) -> str:
    def toml_list(items):
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    return ("\n[tool.mutmut]\n"
            'source_paths = ["minprune"]\n'
            f"only_mutate = {toml_list(modules)}\n"
            f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
            'pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-m", '
            '"not slow and not cuda"]\n'
            'also_copy = ["tests"]\n')


def run_group(name: str, mutmut: str) -> dict:
    """Run mutmut over one group in a scratch copy; return ``{mutant: status}``."""
    from mutmut.stats import status_by_exit_code

    modules, tests, environment = GROUPS[name]
    with tempfile.TemporaryDirectory(prefix=f"minprune-mutation-{name}-") as scratch:
        work = Path(scratch)
        _scratch_copy(work)
        with open(work / "pyproject.toml", "a") as config:
            config.write(_config(modules, tests))
        env = {**os.environ, **environment, "MINPRUNE_FAST": "1"}
        started = time.perf_counter()
        subprocess.run([mutmut, "run", "--max-children", str(os.cpu_count() or 1)], cwd=work,
                       env=env, stdout=subprocess.DEVNULL, check=True)
        seconds = time.perf_counter() - started
        statuses, diffs = {}, {}
        for meta in sorted((work / "mutants").rglob("*.meta")):
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            for mutant, code in codes.items():
                statuses[mutant] = status_by_exit_code[code]
        for mutant, status in statuses.items():
            if status != "killed":
                shown = subprocess.run([mutmut, "show", mutant], cwd=work, env=env,
                                       capture_output=True, text=True)
                diffs[mutant] = shown.stdout.strip()
    return {"statuses": statuses, "diffs": diffs, "seconds": seconds, "modules": modules,
            "tests": tests, "environment": environment}


def _module_of(mutant: str) -> str:
    """``minprune.prune.masks.x_prune_below__mutmut_3`` -> ``minprune/prune/masks.py`` (the last
    dotted part names the function, or the class and method)."""
    return mutant.rsplit(".", 1)[0].replace(".", "/") + ".py"


def summarise(runs: dict, reasons: dict) -> tuple[dict, list[str]]:
    modules, missing = {}, []
    for run in runs.values():
        for module in run["modules"]:
            modules.setdefault(module, {"mutants": 0, "killed": 0, "survived": 0, "other": 0})
        for mutant, status in run["statuses"].items():
            row = modules.setdefault(_module_of(mutant),
                                     {"mutants": 0, "killed": 0, "survived": 0, "other": 0})
            row["mutants"] += 1
            key = status if status in ("killed", "survived") else "other"
            row[key] += 1
            if status != "killed" and mutant not in reasons:
                missing.append(mutant)
    for row in modules.values():
        row["score"] = round(row["killed"] / row["mutants"], 4) if row["mutants"] else None
    return modules, missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", choices=list(GROUPS), action="append")
    args = parser.parse_args(argv)
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"
    # reasons.toml: one table per module, ``"mutant name" = "why it is harmless"``
    tables = tomllib.loads(REASONS.read_text()) if REASONS.exists() else {}
    reasons = {mutant: why for table in tables.values() for mutant, why in table.items()}
    runs, missing = {}, []
    for name in args.group or list(GROUPS):
        print(f"mutation group {name}: {', '.join(GROUPS[name][0])}", flush=True)
        runs[name] = run_group(name, mutmut)
        missing = write_results(runs, reasons, args.group)  # after each group: partial runs count
    if missing:
        print(f"{len(missing)} surviving mutants have no reason in {REASONS}:")
        print("\n".join(f"  {m}" for m in missing))
        return 1
    return 0


def write_results(runs: dict, reasons: dict, groups) -> list[str]:
    """Write summary.json and survivors.md for the groups run so far; return the survivors that
    have no reason."""
    modules, missing = summarise(runs, reasons)
    killed = sum(row["killed"] for row in modules.values())
    total = sum(row["mutants"] for row in modules.values())
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {
        "command": "python tools/mutation.py" + "".join(f" --group {g}" for g in groups or []),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "tool": f"mutmut {_mutmut_version()}",
        "killed": killed, "mutants": total, "score": round(killed / total, 4) if total else None,
        "groups": {name: {"modules": run["modules"], "tests": run["tests"],
                          "environment": run["environment"], "seconds": round(run["seconds"])}
                   for name, run in runs.items()},
        "modules": modules,
    }
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = ["# Surviving mutants", "",
             f"`{summary['command']}`, {summary['date']}, {summary['machine']}: "
             f"{killed} of {total} mutants killed ({summary['score']:.1%}). Every survivor below "
             "with the reason it is harmless (from `results/mutation/reasons.toml`), or marked "
             "as a gap in the tests.", ""]
    for run in runs.values():
        for mutant, diff in sorted(run["diffs"].items()):
            reason = reasons.get(mutant, "NO REASON: a gap in the tests")
            lines += [f"## {mutant} ({run['statuses'][mutant]})", "", reason, "", "```diff",
                      diff, "```", ""]
    (OUT / "survivors.md").write_text("\n".join(lines))
    for module, row in sorted(modules.items()):
        score = f"{row['score']:.1%}" if row["score"] is not None else "-"
        print(f"{module:50s} {row['killed']:4d}/{row['mutants']:4d} killed  {score}")
    print(f"total {killed}/{total} ({summary['score']:.1%}); wrote {OUT}/summary.json, "
          "survivors.md", flush=True)
    return missing


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    sys.exit(main())
