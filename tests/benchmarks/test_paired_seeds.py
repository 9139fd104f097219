"""benchmarks/paired_seeds.py: the intervals and paired differences its tables print."""
import importlib

import numpy as np
import pytest
from scipy import stats

from conftest_helpers import REPO


@pytest.fixture
def paired(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("paired_seeds")


def test_the_interval_is_the_t_interval_of_the_mean(paired):
    values = [50.1, 47.3, 55.0, 49.8, 52.2]
    mean, half = paired.interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values)) and half == pytest.approx((high - low) / 2)
    assert np.isnan(paired.interval([3.0])[1])


def test_the_paired_difference_removes_what_the_seeds_share(paired):
    reference = np.array([40.0, 60.0, 45.0, 70.0, 55.0])  # seeds differ by a lot
    variant = reference + np.array([2.0, 2.5, 1.5, 2.0, 2.0])  # the variant adds ~2 on every seed
    mean, half = paired.paired_difference(variant, reference)
    assert mean == pytest.approx(2.0) and half < 1.0  # excludes 0, although the unpaired intervals overlap
    assert paired.interval(variant)[1] > 10
    with pytest.raises(ValueError, match="same seeds"):
        paired.paired_difference(variant[:4], reference)


def test_the_table_marks_differences_whose_interval_excludes_zero(paired):
    runs = {"intra-only": [[50.0, 40.0], [60.0, 50.0], [55.0, 45.0]],
            "ot-no-cpal": [[52.6, 41.0], [61.0, 51.0], [57.9, 46.0]],
            "miot": [[50.5, 40.0], [59.0, 50.0], [56.0, 45.0]]}
    row = paired.format_row("MIOT", runs, "miot")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "MIOT" and cells[3].startswith("+0.2") and not cells[3].endswith("*")
    assert cells[4].startswith("-2.0") and cells[4].endswith("*")  # below OT without CPAL on every seed


def test_differences_are_taken_to_the_chosen_references(paired):
    runs = {"miot-selected": [[60.0, 50.0], [50.0, 40.0], [55.0, 45.0]],
            "miot-selected-no-mutual": [[57.0, 48.0], [47.5, 39.0], [52.0, 44.0]]}  # 2.5-3 below on every seed
    row = paired.format_row("no mutual", runs, "miot-selected-no-mutual", references=("miot-selected",))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 4 and cells[3].startswith("-2.8") and cells[3].endswith("*")
    row = paired.format_row("selected", runs, "miot-selected", references=("miot-selected",))
    assert row.rstrip(" |").endswith("-")  # no difference to itself


def test_the_map_row_pairs_map_not_rank1(paired):
    runs = {"intra-only": [[50.0, 40.0], [60.0, 50.0], [55.0, 45.0]],
            "miot": [[49.0, 45.0], [61.0, 55.5], [55.0, 49.5]]}  # Rank-1 level, mAP +5 on every seed
    cells = [c.strip() for c in paired.difference_row("MIOT", runs, "miot", ("intra-only",)).strip("|").split("|")]
    assert cells[0] == "MIOT" and cells[1].startswith("+5.0") and cells[1].endswith("*")
    rank1 = [c.strip() for c in paired.format_row("MIOT", runs, "miot", ("intra-only",)).strip("|").split("|")]
    assert rank1[3].startswith("+0.0") and not rank1[3].endswith("*")


def test_the_diagnostics_row_averages_the_last_epoch_over_seeds(paired, tmp_path):
    import json

    def run(name, last):
        folder = tmp_path / name
        folder.mkdir()
        first = {"clusters_visible": 1, "clusters_infrared": 1, "purity_visible": 0.0, "purity_infrared": 0.0,
                 "identity_alignment": 0.0}
        (folder / "metrics.json").write_text(json.dumps(first) + "\n" + json.dumps(last) + "\n")
        return str(folder)

    common = {"clusters_visible": 80, "clusters_infrared": 40, "purity_visible": 0.9, "purity_infrared": 0.6}
    matched = [run("a", dict(common, matched_fraction_visible=0.25, matched_fraction_infrared=0.5,
                             matching_accuracy_kept=0.8, matching_accuracy_dropped=0.2, identity_alignment=0.5)),
               run("b", dict(common, clusters_visible=90, matched_fraction_visible=0.35,
                             matched_fraction_infrared=0.7, matching_accuracy_kept=0.6,
                             matching_accuracy_dropped=0.4, identity_alignment=0.7))]
    cells = [c.strip() for c in paired.diagnostics_row("OT", matched).strip("|").split("|")]
    assert cells == ["OT", "85 / 40", "90 % / 60 %", "30 % / 60 %", "70 % / 30 %", "60 %"]
    unmatched = [run("c", dict(common, identity_alignment=0.4))]  # intra-only logs no matching
    cells = [c.strip() for c in paired.diagnostics_row("intra", unmatched).strip("|").split("|")]
    assert cells[3:5] == ["- / -", "- / -"] and cells[5] == "40 %"


def test_the_curve_row_averages_each_epoch_over_seeds(paired, tmp_path):
    import json

    def run(name, alignments, **extra):
        folder = tmp_path / name
        folder.mkdir()
        records = [dict({"clusters_visible": 1, "identity_alignment": a}, **(extra if k else {}))
                   for k, a in enumerate(alignments)]
        records.insert(1, {"total_loss": 3.0})  # a training record between epochs is not an epoch
        (folder / "metrics.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
        return str(folder)

    runs = [run("a", [0.5, 0.6, 0.7], matching_accuracy_kept=0.2), run("b", [0.3, 0.4, 0.5, 0.9])]
    cells = [c.strip() for c in paired.curve_row("OT", runs, "identity_alignment").strip("|").split("|")]
    assert cells == ["OT", "40", "50", "60"]  # epochs both runs reached
    cells = [c.strip() for c in paired.curve_row("OT", runs, "matching_accuracy_kept").strip("|").split("|")]
    assert cells == ["OT", "-", "20", "20"]  # the mean over the runs that logged it


def test_a_partial_table_pairs_only_the_seeds_every_variant_finished(paired, tmp_path):
    for variant, seeds in {"intra-only": [0, 1, 2, 3], "miot": [0, 2, 3]}.items():
        for seed in seeds:
            folder = tmp_path / "imagenet-nir" / f"{variant}_seed{seed}"
            folder.mkdir(parents=True)
            (folder / "model_final.pth").write_bytes(b"")
    (tmp_path / "imagenet-nir" / "miot_seed1").mkdir()  # started, not finished: no model_final.pth
    assert paired.complete_seeds(str(tmp_path), "imagenet-nir", ["intra-only", "miot"], [0, 1, 2, 3, 4]) == [0, 2, 3]
    assert paired.complete_seeds(str(tmp_path), "imagenet-nir", ["intra-only"], [3, 4, 1]) == [3, 1]


def test_a_resumed_sweep_trains_and_counts_only_the_unfinished_runs(paired, tmp_path, monkeypatch, capsys):
    for run in ["intra-only_seed0", "ot-no-cpal_seed0", "intra-only_seed1"]:
        (tmp_path / "scratch" / run).mkdir(parents=True)
        (tmp_path / "scratch" / run / "model_final.pth").write_bytes(b"")
    trained = []
    monkeypatch.setattr(paired, "ensure", lambda *args, **kwargs: None)
    monkeypatch.setattr(paired, "report", lambda *args, **kwargs: None)
    monkeypatch.setattr(paired, "config_changes", lambda *args: [])  # trained with today's config
    monkeypatch.setattr(paired, "train_once", lambda config, out, overrides: trained.append(out))
    monkeypatch.setattr("sys.argv", ["paired_seeds.py", "--settings", "scratch", "--seeds", "0", "1",
                                     "--variants", "intra-only", "ot-no-cpal", "--out", str(tmp_path)])
    paired.main()
    assert trained == [str(tmp_path / "scratch" / "ot-no-cpal_seed1")]
    assert capsys.readouterr().err.splitlines()[-1:] == ["4 of 4: scratch ot-no-cpal seed 1"]


def test_a_sweep_refuses_finished_runs_of_another_config(paired, tmp_path, monkeypatch, capsys):
    from fastreid_ext.engine.defaults import setup_config

    table = paired.settings("datasets", str(tmp_path))
    for seed, then in [(0, []), (1, ["SOLVER.MAX_EPOCH", "7"])]:  # seed 1 was trained on another schedule
        folder = tmp_path / "scratch" / f"intra-only_seed{seed}"
        folder.mkdir(parents=True)
        (folder / "model_final.pth").write_bytes(b"")
        keys = paired.overrides_of(table, "scratch", "intra-only", seed) + then
        (folder / "config.yaml").write_text(setup_config(str(REPO / "configs" / "SynVI" / "miot.yml"), keys).dump())
    trained = []
    monkeypatch.setattr(paired, "ensure", lambda *args, **kwargs: None)
    monkeypatch.setattr(paired, "train_once", lambda config, out, overrides: trained.append(out))
    argv = ["paired_seeds.py", "--settings", "scratch", "--seeds", "0", "1", "--variants", "intra-only",
            "--references", "intra-only", "--out", str(tmp_path)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match=r"intra-only_seed1: SOLVER.MAX_EPOCH: 7 -> \d+"):
        paired.main()
    assert trained == []
    monkeypatch.setattr(paired, "report", lambda *args, **kwargs: None)
    monkeypatch.setattr("sys.argv", argv + ["--status"])
    paired.main()  # --status still prints the tables, with a note on the runs of another config
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "intra-only_seed1 was trained with another config" in notes[0]
