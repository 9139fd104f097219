#!/usr/bin/env python3
"""The per-module table of a mutation-testing run (``make mutate``): mutants, killed (of them,
stopped by the time limit), equivalent and GPU-only (listed with a reason in
tests/mutation_equivalents.txt; a GPU-only mutant's reason starts with ``GPU only:``: code that
no CPU test reaches), survived, not covered by any test, and the score
killed / (mutants - equivalent - GPU-only). Reads ``mutmut results --all true``.

``--survivors`` prints only the names of the unlisted survivors, to run them again once tests were
added (a resumed run keeps their verdicts): ``mutmut run $(python tests/mutation_report.py --survivors)``."""
import collections
import re
import subprocess
import sys
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.txt")
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


def main() -> None:
    survivors_only = sys.argv[1:] == ["--survivors"]  # names to rerun after new tests: mutmut run $(... --survivors)
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    equivalents = equivalent_mutants()
    rows = collections.defaultdict(collections.Counter)
    listed_survivors = set()
    for line in out.splitlines():
        match = MUTANT.match(line)
        if not match:
            continue
        name = line.split(":")[0].strip()
        status = equivalents.get(name, "survived") if match["status"] == "survived" else match["status"]
        if name in equivalents and match["status"] == "survived":
            listed_survivors.add(name)
        rows[match["module"]][status] += 1
        if survivors_only and status == "survived":
            print(name)
    if survivors_only:
        return
    print("| module | mutants | killed (time limit) | equivalent | GPU only | survived | no tests | not run | score |")
    print("|---|---|---|---|---|---|---|---|---|")
    below, incomplete = [], []
    for module, counts in sorted(rows.items()):
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]
        score = 100.0 * killed / max(total - counts["equivalent"] - counts["GPU only"], 1)
        if counts["not checked"]:
            incomplete.append(module)
        elif score < GOAL:
            below.append(module)
        shown = f"{score:.1f} %" + (" (run incomplete)" if counts["not checked"] else "")
        print(f"| {module} | {total} | {killed} ({counts['timeout']}) | {counts['equivalent']} | {counts['GPU only']} | "
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
