"""fastreid_ext: method-agnostic fastreid extensions for visible-infrared person ReID.

Importing this package first makes fastreid 1.4.0 work on current Python, torch and numpy
(:mod:`fastreid_ext.compat`), then imports the modules whose registrations (data sets,
evaluators, matchers, trainers) must run.
"""
from . import compat

compat.apply()

from . import config  # noqa: E402
from .config import add_ext_config  # noqa: E402
from . import engine  # noqa: E402,F401
from . import cluster, data, evaluation, matching, modeling  # noqa: E402,F401

__all__ = ["add_ext_config", "cluster", "compat", "config", "data", "engine", "evaluation", "matching",
           "modeling"]
__version__ = "0.1.0"
