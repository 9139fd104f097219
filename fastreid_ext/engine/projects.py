"""Projects plugged into the toolkit: each brings its config keys and their start-up checks.

A project (a method under ``projects/``) describes itself with a :class:`Project` and
declares it as a ``fastreid_ext.projects`` entry point in its ``setup.py``::

    entry_points={"fastreid_ext.projects": ["mymethod = mymethod:PROJECT"]}

The entry points (``tools/train_net.py`` and the other tools) then load every installed
project: their config keys are added, their checks run, and importing them registers their
architectures and trainers, without any tool naming a method.
"""
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable, List, Optional, Sequence

from fastreid.config import CfgNode

from ..config_check import Check

ENTRY_POINT_GROUP = "fastreid_ext.projects"


def _no_checks(cfg: CfgNode) -> List[Check]:
    return []


@dataclass(frozen=True)
class Project:
    """What a fastreid project adds to the toolkit's set-up.

    Attributes:
        name: the project's package name (its logger is set up with fastreid's).
        add_config: ``add_*_config(cfg)``: adds the project's keys with their defaults.
        config_checks: ``cfg -> [(key, predicate, allowed), ...]`` checked at start-up.
    """

    name: str
    add_config: Callable[[CfgNode], CfgNode]
    config_checks: Callable[[CfgNode], List[Check]] = _no_checks


def installed_projects(names: Optional[Sequence[str]] = None) -> List[Project]:
    """The projects declared under the ``fastreid_ext.projects`` entry point (sorted by name),
    or only those in ``names``; loading one imports it (its registrations run)."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if names is not None:
        missing = sorted(set(names) - set(found))
        if missing:
            raise KeyError(f"projects {missing} are not installed (entry point group {ENTRY_POINT_GROUP!r}); "
                           f"installed: {sorted(found)}. Install them with pip install -e .")
        found = {name: found[name] for name in names}
    projects = []
    for name in sorted(found):
        project = found[name].load()
        if not isinstance(project, Project):
            raise TypeError(f"entry point {name!r} of {ENTRY_POINT_GROUP!r} must name a fastreid_ext Project, "
                            f"got {type(project).__name__}")
        projects.append(project)
    return projects
