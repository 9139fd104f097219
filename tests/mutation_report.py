#!/usr/bin/env python3
"""The per-module table of a mutation-testing run (``make mutate``): mutants, killed, equivalent
(listed with a reason in tests/mutation_equivalents.txt), survived, not covered by any test, and
the score killed / (mutants - equivalent). Reads ``mutmut results --all true``."""
import collections
import re
import subprocess
import sys
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.txt")
GOAL = 85.0
MUTANT = re.compile(r"^\s*(?P<module>[\w.]+?)\.x[_ǁ].*__mutmut_\d+: (?P<status>.+?)\s*$")


def equivalent_mutants() -> set:
    """Mutant names from the first column of the equivalents file (``name  # reason``)."""
    names = set()
    for line in EQUIVALENTS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition("#")
            if not reason.strip():
                sys.exit(f"{EQUIVALENTS}: {name.strip()} has no reason")
            names.add(name.strip())
    return names


def main() -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    equivalents = equivalent_mutants()
    rows = collections.defaultdict(collections.Counter)
    for line in out.splitlines():
        match = MUTANT.match(line)
        if not match:
            continue
        name = line.split(":")[0].strip()
        status = "equivalent" if name in equivalents and match["status"] == "survived" else match["status"]
        rows[match["module"]][status] += 1
    print("| module | mutants | killed | equivalent | survived | no tests | not run | score |")
    print("|---|---|---|---|---|---|---|---|")
    below, incomplete = [], []
    for module, counts in sorted(rows.items()):
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]
        score = 100.0 * killed / max(total - counts["equivalent"], 1)
        if counts["not checked"]:
            incomplete.append(module)
        elif score < GOAL:
            below.append(module)
        shown = f"{score:.1f} %" + (" (run incomplete)" if counts["not checked"] else "")
        print(f"| {module} | {total} | {killed} | {counts['equivalent']} | {counts['survived']} | "
              f"{counts['no tests']} | {counts['not checked']} | {shown} |")
    done = len(rows) - len(incomplete)
    print(f"\n{done - len(below)} of {done} fully run modules at or above {GOAL:.0f} %"
          + (f"; below: {', '.join(below)}" if below else "")
          + (f"; not fully run: {', '.join(incomplete)}" if incomplete else ""))


if __name__ == "__main__":
    main()
