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


def test_no_tool_or_test_imports_a_script_through_sys_path():
    script_import = re.compile(r"sys\.path\.insert\(.*tools|^\s*import train_net", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p in python_files("tools", "tests", "projects", "benchmarks")
                 if script_import.search(p.read_text())]
    assert offenders == []


def test_the_installed_projects_bring_their_keys_and_checks():
    from fastreid.config import get_cfg

    from fastreid_ext.engine import installed_projects

    projects = installed_projects()
    assert [p.name for p in projects] == ["miot"]
    cfg = projects[0].add_config(get_cfg())
    checked = {key for key, _, _ in projects[0].config_checks(cfg)}
    assert "MIOT.CLUSTER.EPS" in checked and all(key.startswith("MIOT.") for key in checked)
