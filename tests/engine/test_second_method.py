"""A second method, per-modality ClusterContrast (tests/engine/second_method), installed as a
project through the ``fastreid_ext.projects`` entry point and trained by the toolkit's loop."""
import importlib
import json
import sys
from pathlib import Path

import pytest
from fastreid.engine.defaults import default_argument_parser

from conftest_helpers import REPO

METHOD_DIR = REPO / "tests" / "engine" / "second_method"


@pytest.fixture(scope="module")
def installed_second_method(tmp_path_factory):
    """The package importable and declared as a ``fastreid_ext.projects`` entry point, as
    ``pip install`` would declare it (a ``*.dist-info`` folder with ``entry_points.txt``)."""
    site = tmp_path_factory.mktemp("site")
    info = site / "clustercontrast_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clustercontrast-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fastreid_ext.projects]\nclustercontrast = clustercontrast:PROJECT\n")
    sys.path[:0] = [str(site), str(METHOD_DIR)]
    importlib.invalidate_caches()
    yield
    sys.path.remove(str(site))
    sys.path.remove(str(METHOD_DIR))


@pytest.fixture(scope="module")
def second_method_run(installed_second_method, synvi_sysu, tmp_path_factory):
    from fastreid_ext.engine import build_trainer_class, setup

    out = tmp_path_factory.mktemp("clustercontrast")
    args = default_argument_parser().parse_args(
        ["--config-file", str(METHOD_DIR / "clustercontrast.yml"), "DATASETS.ROOT", str(synvi_sysu),
         "OUTPUT_DIR", str(out)])
    cfg = setup(args)
    trainer = build_trainer_class(cfg)(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    return trainer, results, records


def test_the_entry_point_installs_the_second_method_beside_miot(installed_second_method):
    from fastreid_ext.engine import installed_projects

    assert [p.name for p in installed_projects()] == ["clustercontrast", "miot"]


def test_the_second_method_trains_through_the_loop_and_is_evaluated(second_method_run):
    trainer, results, records = second_method_run
    assert type(trainer).__name__ == "ClusterContrastTrainer"
    assert type(trainer.loop).__name__ == "PseudoLabelLoop"  # the toolkit's loop, unchanged
    clustered = [r for r in records if "clusters_visible" in r]
    assert len(clustered) == 2  # re-clustered before each of the two epochs
    assert all(r["clusters_visible"] >= 1 and r["clusters_infrared"] >= 1 for r in clustered)
    model = trainer.model
    assert len(model.labels) == len(trainer.data_loader.dataset.samples)  # set through set_targets
    assert model.labels.tolist() == trainer.loop.current.labels().tolist()
    assert not any("matched_infrared" in r for r in records)  # its method step adds no matching
    assert 0 <= results["Rank-1"] <= 100 and 0 < results["mAP"] <= 100


def test_the_second_methods_epochs_log_their_time_split(second_method_run):
    _, _, records = second_method_run
    for phase in ("extract", "cluster", "knn", "jaccard", "dbscan", "match", "train"):
        values = [r[f"time_{phase}"] for r in records if f"time_{phase}" in r]
        assert len(values) == 2 and all(v >= 0 for v in values), phase
    assert all(r["time_extract"] > 0 and r["time_cluster"] > 0 for r in records if "time_extract" in r)


def test_the_log_shows_each_epochs_split_and_an_eta_with_the_hooks(second_method_run):
    trainer, _, _ = second_method_run
    log = (Path(trainer.cfg.OUTPUT_DIR) / "log.txt").read_text()
    for epoch in (0, 1):
        assert f"epoch {epoch} time: extract " in log and ", cluster " in log and ", train " in log
    assert "(hooks included)" in log
