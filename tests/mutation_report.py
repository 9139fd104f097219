#!/usr/bin/env python3
"""The per-module table of a mutation-testing run (``make mutate``): mutants, killed (of them,
stopped by the time limit), equivalent and GPU-only (listed with a reason in
tests/mutation_equivalents.txt; a GPU-only mutant's reason starts with ``GPU only:``: code that
no CPU test reaches), survived, not covered by any test, and the score
killed / (mutants - equivalent - GPU-only). Reads ``mutmut results --all true``.

``--survivors`` prints only the names of the unlisted survivors, to run them again once tests were
added (a resumed run keeps their verdicts): ``mutmut run $(python tests/mutation_report.py --survivors)``.

``--recheck`` runs each unlisted survivor's covering tests again in a fresh ``pytest`` process
(``MUTANT_UNDER_TEST`` set, as mutmut does) and keeps the exit codes in mutants/rechecked.json:
mutmut 3.8 records a mutant whose test crashes the interpreter (scipy aborts on the NaN input a
mutant lets through, exit -6) as survived or suspicious; a failing or crashing test is a kill, shown
in the "recheck" count of the killed column."""
import collections
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.txt")
RECHECKED = Path("mutants") / "rechecked.json"
GOAL = 85.0
MUTANT = re.compile(r"^\s*(?P<module>[\w.]+?)\.x[_ǁ].*__mutmut_\d+: (?P<status>.+?)\s*$")


def equivalent_mutants() -> dict:
    """Mutant name -> ``equivalent`` or ``GPU only``, from the equivalents file (``name  # reason``)."""
    names = {}
    for line in EQUIVALENTS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition("#")
            if not reason.strip():
                sys.exit(f"{EQUIVALENTS}: {name.strip()} has no reason")
            names[name.strip()] = "GPU only" if reason.strip().startswith("GPU only:") else "equivalent"
    return names


def recheck(mutmut: Path, name: str) -> int:
    """Exit code of the mutant's covering tests run in a fresh pytest process (negative: a signal)."""
    tests = subprocess.run([str(mutmut), "tests-for-mutant", name], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    env = dict(os.environ, MUTANT_UNDER_TEST=name, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "--rootdir=."]
    code = subprocess.run(command + tests, cwd="mutants", env=env, capture_output=True).returncode
    if code in (2, 3, 4, 5):
        sys.exit(f"{name}: pytest could not run its tests (exit {code})")
    return code


def main() -> None:
    survivors_only = sys.argv[1:] == ["--survivors"]  # names to rerun after new tests: mutmut run $(... --survivors)
    rechecking = sys.argv[1:] == ["--recheck"]
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    equivalents = equivalent_mutants()
    rechecked = json.loads(RECHECKED.read_text()) if RECHECKED.exists() else {}
    if rechecking:
        names = [line.split(":")[0].strip() for line in out.splitlines() if MUTANT.match(line)
                 and MUTANT.match(line)["status"] in ("survived", "suspicious")]
        names = [name for name in names if name not in equivalents]
        with ThreadPoolExecutor(max_workers=2) as pool:
            rechecked = dict(zip(names, pool.map(lambda name: recheck(mutmut, name), names)))  # this run's only
        RECHECKED.write_text(json.dumps(rechecked, indent=1))
        print(f"{sum(code != 0 for code in rechecked.values())} of {len(names)} survivors killed on recheck")
    rows = collections.defaultdict(collections.Counter)
    listed_survivors = set()
    for line in out.splitlines():
        match = MUTANT.match(line)
        if not match:
            continue
        name = line.split(":")[0].strip()
        status = "survived" if match["status"] == "suspicious" else match["status"]
        if status == "survived" and rechecked.get(name, 0) != 0:
            status = "recheck"
        elif status == "survived":
            status = equivalents.get(name, "survived")
        if name in equivalents and match["status"] in ("survived", "suspicious"):
            listed_survivors.add(name)
        rows[match["module"]][status] += 1
        if survivors_only and status == "survived":
            print(name)
    if survivors_only:
        return
    print("| module | mutants | killed (time limit, recheck) | equivalent | GPU only | survived | no tests | not run | "
          "score |")
    print("|---|---|---|---|---|---|---|---|---|")
    below, incomplete = [], []
    for module, counts in sorted(rows.items()):
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"] + counts["recheck"]
        score = 100.0 * killed / max(total - counts["equivalent"] - counts["GPU only"], 1)
        if counts["not checked"]:
            incomplete.append(module)
        elif score < GOAL:
            below.append(module)
        shown = f"{score:.1f} %" + (" (run incomplete)" if counts["not checked"] else "")
        print(f"| {module} | {total} | {killed} ({counts['timeout']}, {counts['recheck']}) | {counts['equivalent']} | "
              f"{counts['GPU only']} | "
              f"{counts['survived']} | {counts['no tests']} | {counts['not checked']} | {shown} |")
    stale = sorted(set(equivalents) - listed_survivors)
    if stale:
        print(f"\nlisted in {EQUIVALENTS.name} but not surviving (killed now, or renamed by a change; remove them):")
        print("\n".join(f"  {name}" for name in stale))
    done = len(rows) - len(incomplete)
    print(f"\n{done - len(below)} of {done} fully run modules at or above {GOAL:.0f} %"
          + (f"; below: {', '.join(below)}" if below else "")
          + (f"; not fully run: {', '.join(incomplete)}" if incomplete else ""))


if __name__ == "__main__":
    main()
