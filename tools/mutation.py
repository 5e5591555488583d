"""Mutation testing of the code that implements the paper and its storage: `make mutation`.

Would the tests catch a wrong line? mutmut (``pip install -e ".[mutation]"``) plants one small
mistake at a time -- ``>=`` for ``>``, a dropped ``*=``, a changed constant -- in the modules of
``GROUPS`` and runs the tests that cover the mutated function; a mutant the tests let through
*survived*. Each group runs in its own copy of the checkout, ``.mutation/<group>/`` (git-ignored;
mutmut's ``mutants/`` folder never touches the repository), the Numba kernels with
``NUMBA_DISABLE_JIT=1`` so that mutmut can rewrite them as plain Python. The copy is kept: a
second run tests only the mutants of functions changed since, then every survivor again against
today's tests, so the loop "read a survivor, write the test it asks for, run again" takes minutes,
not the hour a full run takes on 2 cores.

The modules are the paper's method and its storage (issue 25): the threshold and masks, the
criteria, the dropout adjustment, the prune/retrain loop and its resumable wrapper, the
schedules, the masked SGD (both paths and the kernel), the ops' backward passes, CSR, export,
storage accounting and the engine's path choice. Gradual pruning and surgery (the comparisons,
not the paper) are left out.

Writes ``results/mutation/summary.json`` (the command, date, machine, and per module: mutants,
killed, survived, score) and ``results/mutation/survivors.md`` (every survivor with its diff and
the reason it is harmless, from ``results/mutation/reasons.toml``). A survivor without a reason is
a gap in the tests: the run exits 1 and lists it.

    python tools/mutation.py                  # every group (a first run: hours on 2 cores)
    python tools/mutation.py --group pruning  # one group; the others keep their last result
    python tools/mutation.py --fresh          # forget the kept verdicts, test every mutant
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "mutation"
REASONS = OUT / "reasons.toml"
WORK = ROOT / ".mutation"  # one work folder per group, kept between runs (git-ignored)

# name: (modules to mutate, tests that may kill their mutants, extra environment)
GROUPS = {
    "pruning": (
        ["minprune/prune/masks.py", "minprune/prune/criteria.py", "minprune/prune/dropout.py",
         "minprune/prune/loop.py", "minprune/prune/retraining.py", "minprune/prune/rounds.py"],
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
         "tests/test_schedules.py", "tests/test_phase.py",
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


def _refresh(work: Path) -> None:
    """Copy the tracked files of the checkout, as they are in the working tree, over ``work``
    (the package and the tests first removed, so that a deleted file does not linger)."""
    for folder in ("minprune", "tests"):
        shutil.rmtree(work / folder, ignore_errors=True)
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)


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


def _statuses(work: Path) -> dict:
    from mutmut.stats import status_by_exit_code

    statuses = {}
    for meta in sorted((work / "mutants").rglob("*.meta")):
        for mutant, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            statuses[mutant] = status_by_exit_code[code]
    return statuses


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return head + ("+changes" if dirty else "")


def _mutmut(command: list[str], work: Path, env: dict, output) -> None:
    if subprocess.run(command, cwd=work, env=env, stdout=output, stderr=output).returncode:
        raise SystemExit(f"mutmut failed in {work}: see {work / 'mutmut.log'}")


def _in_a_fresh_process(mutant: str, mutmut: str, work: Path, env: dict, output) -> str:
    """Test a "suspicious" mutant again (mutmut's forked worker was killed by a signal: Numba's
    thread pool does not survive a fork) in a fresh interpreter, with the tests that cover it:
    "killed" when they fail, "survived" when they pass, "timeout" past 10 minutes."""
    tests = subprocess.run([mutmut, "tests-for-mutant", mutant], cwd=work, env=env,
                           capture_output=True, text=True).stdout.splitlines()
    if not tests:
        return "suspicious"
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                              *tests], cwd=work / "mutants", stdout=output, stderr=output,
                             env={**env, "MUTANT_UNDER_TEST": mutant}, timeout=600)
    except subprocess.TimeoutExpired:
        return "timeout"
    print(f"{mutant}: suspicious in mutmut's worker; in a fresh process pytest exits "
          f"{run.returncode}", file=output, flush=True)
    return {0: "survived", 1: "killed"}.get(run.returncode, "suspicious")


def run_group(name: str, mutmut: str, fresh: bool) -> dict:
    """Run mutmut over one group in its work folder (``.mutation/<group>``, never the checkout);
    return ``{mutant: status}`` and the diffs of those not killed.

    The folder is kept between runs, and mutmut keeps each mutant's verdict while its function
    is unchanged: a later run tests only new or changed mutants, then tests every survivor again
    against today's tests (a test added since can kill it; a killed mutant stays killed, as
    tests are added, not weakened -- ``--fresh`` starts over)."""
    modules, tests, environment = GROUPS[name]
    work = WORK / name
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    # a first run: no mutant has a verdict yet (a folder left by a start that failed has none)
    first = all(status == "not checked" for status in _statuses(work).values())
    work.mkdir(parents=True, exist_ok=True)
    _refresh(work)
    with open(work / "pyproject.toml", "a") as config:
        config.write(_config(modules, tests))
    env = {**os.environ, **environment, "MINPRUNE_FAST": "1"}
    run = [mutmut, "run", "--max-children", str(os.cpu_count() or 1)]
    started = time.perf_counter()
    with open(work / "mutmut.log", "w") as output:  # mutmut's own report, for a failed run
        _mutmut(run, work, env, output)
        if not first:
            again = [m for m, status in _statuses(work).items() if status != "killed"]
            if again:
                _mutmut(run + again, work, env, output)
        statuses = _statuses(work)
        for mutant in [m for m, status in statuses.items() if status == "suspicious"]:
            statuses[mutant] = _in_a_fresh_process(mutant, mutmut, work, env, output)
    seconds = time.perf_counter() - started
    history_file = work / "history.json"
    history = json.loads(history_file.read_text()) if history_file.exists() else []
    history.append({"commit": _commit(), "date": time.strftime("%Y-%m-%d %H:%M"),
                    "kind": "every mutant" if first else "new mutants and survivors",
                    "seconds": round(seconds)})
    history_file.write_text(json.dumps(history, indent=1) + "\n")
    diffs = {}
    for mutant, status in statuses.items():
        if status != "killed":
            shown = subprocess.run([mutmut, "show", mutant], cwd=work, env=env,
                                   capture_output=True, text=True)
            diffs[mutant] = shown.stdout.strip()
    result = {"statuses": statuses, "diffs": diffs, "history": history, "modules": modules,
              "tests": tests, "environment": environment}
    (work / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


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
            # a timeout is detected too: the mutant made the tests hang (an infinite loop)
            key = {"killed": "killed", "timeout": "killed", "survived": "survived"}.get(status,
                                                                                     "other")
            row[key] += 1
            if status not in ("killed", "timeout") and mutant not in reasons:
                missing.append(mutant)
    for row in modules.values():
        row["score"] = round(row["killed"] / row["mutants"], 4) if row["mutants"] else None
    return modules, missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", choices=list(GROUPS), action="append")
    parser.add_argument("--fresh", action="store_true",
                        help="forget earlier verdicts and test every mutant again")
    args = parser.parse_args(argv)
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"
    # reasons.toml: one table per module, ``"mutant name" = "why it is harmless"``
    tables = tomllib.loads(REASONS.read_text()) if REASONS.exists() else {}
    reasons = {mutant: why for table in tables.values() for mutant, why in table.items()}
    missing = []
    for name in args.group or list(GROUPS):
        print(f"mutation group {name}: {', '.join(GROUPS[name][0])}", flush=True)
        run_group(name, mutmut, args.fresh)
        # after each group, over every group that has a result (a group run alone keeps the rest)
        runs = {group: json.loads((WORK / group / "result.json").read_text())
                for group in GROUPS if (WORK / group / "result.json").exists()}
        missing = write_results(runs, reasons)
    if missing:
        print(f"{len(missing)} surviving mutants have no reason in {REASONS}:")
        print("\n".join(f"  {m}" for m in missing))
        return 1
    return 0


def write_results(runs: dict, reasons: dict) -> list[str]:
    """Write summary.json and survivors.md for the groups run so far; return the survivors that
    have no reason."""
    modules, missing = summarise(runs, reasons)
    killed = sum(row["killed"] for row in modules.values())
    total = sum(row["mutants"] for row in modules.values())
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {
        "command": "python tools/mutation.py",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "tool": f"mutmut {_mutmut_version()}",
        "killed": killed, "mutants": total, "score": round(killed / total, 4) if total else None,
        "groups": {name: {"modules": run["modules"], "tests": run["tests"],
                          "environment": run["environment"], "runs": run["history"]}
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
