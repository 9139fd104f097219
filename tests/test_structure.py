"""The house rules that keep the toolkit reusable by any fastreid project."""
import re

from conftest_helpers import REPO


def python_files(*folders):
    return [p for folder in folders for p in (REPO / folder).rglob("*.py")]


def test_the_toolkit_names_no_method():
    offenders = [str(p.relative_to(REPO)) for p in python_files("fastreid_ext")
                 if re.search(r"miot", p.read_text(), re.IGNORECASE)]
    assert offenders == []


def test_only_compat_reads_fastreids_private_registry_map():
    offenders = [str(p.relative_to(REPO)) for p in python_files("fastreid_ext", "projects", "tools", "benchmarks")
                 if "_obj_map" in p.read_text() and p.name != "compat.py"]
    assert offenders == []


def sys_path_lines(path):
    return [line for line in path.read_text().splitlines() if "sys.path" in line]


def test_no_tool_benchmark_or_project_reaches_into_tests_or_tools():
    """Scripts and the method import packages only: test helpers live in ``fastreid_ext.testing``,
    a tool's functions are called by loading the script (``conftest_helpers.load_tool``)."""
    reach = re.compile(r"\b(tests|tools)\b")
    test_import = re.compile(r"^\s*(from|import)\s+(tests\b|conftest|dense_jaccard|prototype_costs)", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p in python_files("tools", "projects", "benchmarks")
                 if any(reach.search(line) for line in sys_path_lines(p)) or test_import.search(p.read_text())]
    assert offenders == []


def test_no_test_imports_a_tool_through_sys_path():
    tools = "|".join(p.stem for p in (REPO / "tools").glob("*.py"))
    script_import = re.compile(rf"^\s*(from|import)\s+({tools})\b", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p in python_files("tests")
                 if any("tools" in line for line in sys_path_lines(p)) or script_import.search(p.read_text())]
    assert offenders == []


def test_the_installed_projects_bring_their_keys_and_checks():
    from fastreid.config import get_cfg

    from fastreid_ext.engine import installed_projects

    projects = installed_projects()
    assert [p.name for p in projects] == ["miot"]
    cfg = projects[0].add_config(get_cfg())
    checked = {key for key, _, _ in projects[0].config_checks(cfg)}
    assert "MIOT.CLUSTER.EPS" in checked and all(key.startswith("MIOT.") for key in checked)
