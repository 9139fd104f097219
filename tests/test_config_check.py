"""Start-up config checks: unknown keys and impossible values are named, with what is allowed."""
from pathlib import Path

import pytest
from fastreid.engine.defaults import default_argument_parser

from fastreid_ext.config_check import ConfigError
from miot.config import matcher_kwargs

REPO = Path(__file__).resolve().parents[1]
SYNVI = str(REPO / "configs" / "SynVI" / "miot.yml")


def setup(*argv):
    from fastreid_ext.engine import setup as setup_from_args

    return setup_from_args(default_argument_parser().parse_args(list(argv)))


def test_a_mistyped_key_on_the_command_line_gets_the_closest_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'MIOT.CLUSTER.EPSS' in the command line; "
                                          r"did you mean MIOT.CLUSTER.EPS"):
        setup("--config-file", SYNVI, "MIOT.CLUSTER.EPSS", "0.5", "OUTPUT_DIR", str(tmp_path))


def test_a_mistyped_key_in_a_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(f"_BASE_: {SYNVI}\nSOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'SOLVER.BASE_LRR' in .*bad.yml; did you mean SOLVER.BASE_LR"):
        setup("--config-file", str(bad))


@pytest.mark.parametrize("key,value,message", [
    ("MIOT.CLUSTER.EPS", "0.0", r"MIOT.CLUSTER.EPS = 0.0: must be in \(0, 1\)"),
    ("MIOT.CLUSTER.EPS", "-0.2", r"MIOT.CLUSTER.EPS = -0.2: must be in \(0, 1\)"),
    ("MIOT.MATCHER.NAME", "sinkhorn", r"MIOT.MATCHER.NAME = 'sinkhorn': must be one of \['hungarian', 'none', 'ot'\]|"
                                      r"MIOT.MATCHER.NAME = 'sinkhorn': must be one of \[.*'hungarian'.*'ot'.*'none'\]"),
    ("MIOT.MOMENTUM", "1.5", r"MIOT.MOMENTUM = 1.5: must be in \[0, 1\)"),
    ("DATASETS.NAMES", "('SYSU',)", r"DATASETS.NAMES = \('SYSU',\): must be names registered"),
    ("MODEL.WEIGHTS", "/no/such/model.pth", r"MODEL.WEIGHTS = '/no/such/model.pth': file not found"),
    ("MODEL.BACKBONE.PRETRAIN", "True", r"PRETRAIN = True with an empty MODEL.BACKBONE.PRETRAIN_PATH: nothing is downloaded"),
])
def test_impossible_values_are_refused_before_anything_starts(key, value, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        setup("--config-file", SYNVI, key, value, "OUTPUT_DIR", str(tmp_path))


def test_an_option_key_the_configured_matcher_does_not_take_is_refused_at_start_up(tmp_path):
    with pytest.raises(ConfigError, match=r"MIOT.MATCHER.REG = 0.1: must be its default 0.05: matcher 'hungarian' "
                                          r"takes no option 'reg' \(it takes threshold, mutual\)"):
        setup("--config-file", SYNVI, "MIOT.MATCHER.NAME", "hungarian", "MIOT.MATCHER.REG", "0.1",
              "OUTPUT_DIR", str(tmp_path))
    cfg = setup("--config-file", SYNVI, "MIOT.MATCHER.NAME", "hungarian", "MIOT.MATCHER.THRESHOLD", "0.3",
                "OUTPUT_DIR", str(tmp_path))
    assert matcher_kwargs(cfg) == {"threshold": 0.3, "mutual": False}  # what the loop passes to the matcher


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        setup("--config-file", SYNVI, "MIOT.TEMP", "0.0", "MIOT.CLUSTER.K1", "0", "OUTPUT_DIR", str(tmp_path))
    assert "MIOT.TEMP = 0.0" in str(info.value) and "MIOT.CLUSTER.K1 = 0" in str(info.value)


def test_a_value_of_the_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"Type mismatch .* for config key: MIOT.TEMP"):
        setup("--config-file", SYNVI, "MIOT.TEMP", "0", "OUTPUT_DIR", str(tmp_path))


def test_missing_weight_file_and_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"PRETRAIN_PATH = '/nope.pth': file not found"):
        setup("--config-file", SYNVI, "MODEL.BACKBONE.PRETRAIN", "True", "MODEL.BACKBONE.PRETRAIN_PATH", "/nope.pth",
              "OUTPUT_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"--config-file '/nope.yml' does not exist"):
        setup("--config-file", "/nope.yml")
    with pytest.raises(ConfigError, match="--eval-only needs the checkpoint"):
        setup("--config-file", SYNVI, "--eval-only", "OUTPUT_DIR", str(tmp_path))


def test_the_shipped_configs_pass(tmp_path):
    for config in (REPO / "configs").rglob("*.yml"):
        if config.name.startswith("Base"):
            continue
        cfg = setup("--config-file", str(config), "MODEL.BACKBONE.PRETRAIN", "False", "OUTPUT_DIR", str(tmp_path))
        supervised = config.stem.startswith(("agw", "supervised"))
        assert cfg.TRAINER.NAME == ("CrossModalitySupervisedTrainer" if supervised else "MIOTTrainer"), config
