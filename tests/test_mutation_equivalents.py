"""The list of equivalent mutants (tests/mutation_equivalents.txt) stays readable by the report:
one mutant per line, each with a reason, none twice, each in a module that is mutated."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mutation_report import EQUIVALENTS, MUTANT, equivalent_mutants  # noqa: E402

MUTATED = ("fastreid_ext.cluster.", "fastreid_ext.matching.", "fastreid_ext.evaluation.", "miot.losses.",
           "miot.memory.", "miot.pseudo_labels.")


def test_every_listed_mutant_has_a_reason_and_appears_once():
    lines = [line for line in EQUIVALENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    names = [line.partition("#")[0].strip() for line in lines]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
    assert all(line.partition("#")[2].strip() for line in lines)
    assert all(MUTANT.match(f"{name}: survived") for name in names)
    assert all(name.startswith(MUTATED) for name in names)
    assert set(equivalent_mutants()) == set(names)

