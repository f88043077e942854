"""Published optimizer runs as the field (the study's `published` key): DeepOBS-format result JSON read into
run folders that aggregation loads like the study's own runs, always marked as published.

Sources (SOURCES): **deepobs-v1.1**, the DeepOBS baselines v1.1 (github fsschneider/DeepOBS_Baselines, tag v1.1,
commit 3da285a, MIT licence; Schneider, Balles & Hennig, ICLR 2019): SGD, Momentum (0.99) and Adam on 8 problems,
the best learning rate of a 36-point grid rerun at seeds 42–51, trained with TensorFlow 1.x; and
**crowded-valley** (github SirRob1997/Crowded-Valley---Results; Schmidt, Schneider & Hennig, ICML 2021): the same
JSON layout as DeepOBS 1.2 writes it, read from a local copy (`dir`, and `subfolder`, e.g.
results/large_budget/cosine; 4.6 GB, so no manifest ships: `local_manifest` lists the copy, unverified).

A JSON's format is detected from its keys (`detect_format`): DeepOBS 1.1 writes `optimizer`, `hyperparams`,
`learning_rate`, `lr_sched_epochs/factors` at the top level; DeepOBS 1.2 (Crowded Valley) writes
`optimizer_name`, `optimizer_hyperparams` (with the learning rate) and `training_params` (schedule), and
`valid_*` curves. Either has per-epoch `train_losses`, `test_losses` (and `*_accuracies` for classifiers), each
num_epochs + 1 values: index 0 is the evaluation before training.

Files come from the pinned commit (`raw.githubusercontent.com/<repo>/<commit>/<path>`), each verified by its git
blob SHA-1 from the source's manifest (optimbench/manifests/<source>.json, written by
scripts/published_manifest.py), cached under the cache folder (resources/published/<source>/<path>): a verified
file is never downloaded again, in any study of the working directory. With `dir` (a local copy of the
repository) files are read from there and their checksum recorded as verified or not.

Each imported run becomes a folder (Plan.settings["published"]["runs"][i]["dir"]) with metrics.csv (epochs
1…N: `train_<m>`, `test_<m>` from the curves, `lr`, no timings) and run.json (its spec with the published
optimizer's name, e.g. "Adam [deepobs-v1.1]", and `published`: source, repository, commit, release, file,
licence, framework, checksum). optimbench's train_loss is the running mean over an epoch's steps; DeepOBS's
train_losses an evaluation pass after the epoch (deepobs/tensorflow/runners/standard_runner.py): compare test
metrics, not train ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from optimbench.errors import DataError
from optimbench.io import atomic_path, write_json, write_rows
from optimbench.metrics import diverged

MANIFESTS = Path(__file__).resolve().parent / "manifests"
CACHE_DIR = "resources/published"  # the cache of verified downloads, shared by the studies of a working directory
PUBLISHED_DIR = "{results}/published/{source}/{problem}/{source_optimizer}/seed{seed}"
CURVES = {"train_losses": "train_loss", "test_losses": "test_loss", "train_accuracies": "train_acc",
          "test_accuracies": "test_acc", "valid_losses": "val_loss", "valid_accuracies": "val_acc"}


@dataclass(frozen=True)
class Source:
    """A published set of runs: where it lives and what it is."""

    name: str
    title: str
    repository: str
    commit: str
    release: str
    licence: str
    framework: str
    optimizers: dict  # its optimizer folder name -> the short name a config uses
    manifest: str | None  # file under MANIFESTS, or None (a local copy is needed)

    def url(self, path: str) -> str:
        return f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/{path}"

    def label(self, optimizer: str) -> str:
        """The name a published optimizer has in every table and figure: never an own run's."""
        return f"{optimizer} [{self.name}]"


SOURCES = {s.name: s for s in (
    Source("deepobs-v1.1", "DeepOBS baselines v1.1", "fsschneider/DeepOBS_Baselines",
           "3da285abf9786e823aaef6d0fc0c9c98ef5d6d83", "v1.1", "MIT", "TensorFlow 1.x",
           {"GradientDescentOptimizer": "SGD", "MomentumOptimizer": "Momentum", "AdamOptimizer": "Adam"},
           "deepobs-v1.1.json"),
    Source("crowded-valley", "Descending through a Crowded Valley (results)", "SirRob1997/Crowded-Valley---Results",
           "df102fc28e41312a5ea3fbb16a482c250bbb45b9", "df102fc", "none stated (its README asks for a citation)",
           "TensorFlow 1.x (DeepOBS 1.2)", {}, None),
)}


def get(name: str) -> Source:
    """The named source. Raises DataError listing the known ones."""
    if name not in SOURCES:
        raise DataError(f"unknown published source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


def manifest(source: Source, local_dir=None, subfolder: str = "") -> dict:
    """The source's manifest: {"targets": {path, sha1} or None, "runs": {problem: {optimizer folder: {setting,
    seeds: {seed: {path, sha1}}}}}}: the shipped one, or for a source without one (Crowded Valley) the local
    copy's (local_manifest).

    Raises:
        DataError: a source without a manifest and no local copy.
    """
    if source.manifest is not None:
        return json.loads((MANIFESTS / source.manifest).read_text())
    if local_dir is None:
        raise DataError(f"published source {source.name} ships no manifest: give `dir`, a local copy of "
                        f"{source.repository}")
    return local_manifest(local_dir, subfolder)


def local_manifest(local_dir, subfolder: str = "") -> dict:
    """The manifest of a local copy's results under `subfolder` (Crowded Valley: e.g. results/large_budget/cosine):
    every <problem>/<optimizer>/<setting>/random_seed__<seed>__<date>.json, keeping per problem and optimizer the
    setting run at more than one seed (the final one; the others are a search's single-seed trials). No checksum
    is known for these files (sha1 None: recorded as not verified).

    Raises:
        DataError: two settings of one optimizer on one problem each run at several seeds (which is final?).
    """
    root, found = Path(local_dir) / subfolder, {}
    for path in sorted(root.glob("*/*/*/random_seed__*.json")):
        problem, optimizer, setting = path.relative_to(root).parts[:3]
        found.setdefault((problem, optimizer, setting), {})[path.name.split("__")[1]] = {
            "path": str(path.relative_to(local_dir)), "sha1": None}
    runs = {}
    for (problem, optimizer, setting), seeds in found.items():
        if len(seeds) > 1:
            if optimizer in runs.setdefault(problem, {}):
                raise DataError(f"{root / problem / optimizer}: two settings were run at several seeds "
                                f"({runs[problem][optimizer]['setting']}, {setting}): no final one to import")
            runs[problem][optimizer] = {"setting": setting, "seeds": dict(sorted(seeds.items(), key=lambda s: int(
                s[0])))}
    return {"targets": None, "runs": runs}


def problems_of(source: Source, local_dir=None, subfolder: str = "") -> list[str]:
    return sorted(manifest(source, local_dir, subfolder)["runs"])


def short_names(source: Source, runs: dict) -> dict:
    """{short name (SGD, Momentum, Adam): the source's optimizer folder name}; a source without short names
    (Crowded Valley) uses its folder names (AMSGrad, ...), those of `runs` (a manifest's)."""
    if source.optimizers:
        return {short: folder for folder, short in source.optimizers.items()}
    return {folder: folder for by_optimizer in runs.values() for folder in by_optimizer}


# ---------------------------------------------------------------- the plan's published runs
def planned_runs(source_name: str, settings: dict, problems: dict, results_dir: str) -> list[dict]:
    """The published runs a study imports from one source: for each of the study's problems the source has, each
    optimizer of settings["optimizers"] (short names), each of its seeds. `problems`: {problem: its epochs in
    the study} (the published curves are cut there). Each run: problem, optimizer (its label), source,
    source_optimizer, seed, setting, file, sha1, epochs, dir. Raises DataError for an unknown optimizer."""
    source = get(source_name)
    listed = manifest(source, settings.get("dir"), settings.get("subfolder", ""))["runs"]
    names, runs = short_names(source, listed), []
    for optimizer in settings["optimizers"]:
        if optimizer not in names:
            raise DataError(f"published.{source_name}.optimizers: {optimizer!r} is not one of its optimizers "
                            f"({', '.join(sorted(names)) or 'none found'})")
    for problem, epochs in problems.items():
        by_optimizer = listed.get(problem, {})
        for optimizer in settings["optimizers"]:
            entry = by_optimizer.get(names[optimizer])
            for seed, where in (entry["seeds"].items() if entry else ()):
                fields = dict(source=source_name, problem=problem, source_optimizer=names[optimizer], seed=int(seed))
                runs.append({**fields, "optimizer": source.label(optimizer), "setting": entry["setting"],
                             "file": where["path"], "sha1": where["sha1"], "epochs": int(epochs),
                             "dir": PUBLISHED_DIR.format(results=results_dir, **fields)})
    return runs


def targets(source_name: str, local_dir: str | None = None, cache_dir: str = CACHE_DIR) -> dict:
    """The source's per-problem targets (DeepOBS's convergence_performance.json), fetched and verified."""
    source = get(source_name)
    entry = manifest(source, local_dir)["targets"]
    if entry is None:
        raise DataError(f"published source {source_name} has no targets file")
    return json.loads(fetch(source, entry["path"], entry["sha1"], cache_dir, local_dir)[0].read_text())


# ---------------------------------------------------------------- files: download, checksum, cache
def git_blob_sha1(payload: bytes) -> str:
    """Git's object id of a file's bytes: SHA-1 of b"blob <size>\\0" + bytes (what `git ls-tree` lists)."""
    return hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()


def fetch(source: Source, path: str, sha1: str | None, cache_dir=CACHE_DIR, local_dir=None) -> tuple[Path, bool]:
    """(the file, whether its checksum matched) for `path` of the source. From local_dir if given (a local copy;
    a mismatch is recorded, not refused: e.g. a copy with the minibatch losses dropped); else the cache, or a
    download verified against `sha1` and then cached.

    Raises:
        DataError: the file is missing from local_dir, the download fails, or its checksum does not match.
    """
    if local_dir is not None:
        local = Path(local_dir) / path
        if not local.is_file():
            raise DataError(f"published {source.name}: {local} does not exist: `dir` must be a copy of "
                            f"{source.repository} at {source.release} (or drop `dir` to download)")
        return local, sha1 is not None and git_blob_sha1(local.read_bytes()) == sha1
    cached = Path(cache_dir) / source.name / path
    if cached.is_file() and git_blob_sha1(cached.read_bytes()) == sha1:
        return cached, True
    try:
        with urllib.request.urlopen(source.url(path), timeout=60) as response:
            payload = response.read()
    except OSError as exc:
        raise DataError(f"published {source.name}: download of {source.url(path)} failed ({exc}). Offline: clone "
                        f"{source.repository} at {source.release} and set published.{source.name}.dir to it") from exc
    if git_blob_sha1(payload) != sha1:
        raise DataError(f"published {source.name}: {source.url(path)} has checksum {git_blob_sha1(payload)}, the "
                        f"manifest says {sha1}: not the published file; nothing was cached")
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        Path(tmp).write_bytes(payload)
    return cached, True


# ---------------------------------------------------------------- reading a result JSON
def detect_format(record: dict, where="") -> str:
    """"deepobs-1.1" or "deepobs-1.2" (Crowded Valley) from a result JSON's keys (module docstring).

    Raises:
        DataError: naming the file, when it has neither layout.
    """
    if "optimizer_name" in record and "optimizer_hyperparams" in record:
        return "deepobs-1.2"
    if "optimizer" in record and "learning_rate" in record:
        return "deepobs-1.1"
    raise DataError(f"{where}: not a DeepOBS result JSON (neither optimizer_name + optimizer_hyperparams, DeepOBS "
                    f"1.2, nor optimizer + learning_rate, DeepOBS 1.1); its keys: {sorted(record)[:12]}")


def parse_run(record: dict, where="") -> dict:
    """A result JSON in one layout: format, testproblem, optimizer, learning_rate, hyperparams (without the
    learning rate), batch_size, num_epochs, seed, weight_decay, lr_sched_epochs/factors and curves
    {train_loss, test_loss, ...: lists of num_epochs + 1 floats, index 0 before training}.

    Raises:
        DataError: an unknown layout, or a curve whose length is not num_epochs + 1.
    """
    fmt = detect_format(record, where)
    if fmt == "deepobs-1.1":
        hyper, optimizer, lr = dict(record.get("hyperparams") or {}), record["optimizer"], record["learning_rate"]
        schedule, weight_decay = record, record.get("weight_decay")
    else:
        hyper, optimizer = dict(record["optimizer_hyperparams"]), record["optimizer_name"]
        lr = hyper.pop("learning_rate", hyper.pop("lr", None))
        schedule, weight_decay = record.get("training_params") or {}, record.get("l2_reg", record.get("weight_decay"))
    curves = {name: [float(v) for v in record[key]] for key, name in CURVES.items() if record.get(key) is not None}
    epochs = int(record["num_epochs"])
    for name, values in curves.items():
        if len(values) != epochs + 1:
            raise DataError(f"{where}: {name} has {len(values)} values, num_epochs {epochs} needs {epochs + 1}")
    return {"format": fmt, "testproblem": record["testproblem"], "optimizer": optimizer, "learning_rate": lr,
            "hyperparams": hyper, "batch_size": record["batch_size"], "num_epochs": epochs,
            "seed": int(record["random_seed"]), "weight_decay": weight_decay,
            "lr_sched_epochs": schedule.get("lr_sched_epochs"), "lr_sched_factors": schedule.get("lr_sched_factors"),
            "curves": curves}


def read_run(path) -> dict:
    """parse_run of a JSON file. Raises DataError naming the file when it cannot be read."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read a published run ({type(exc).__name__}: {exc})") from exc
    return parse_run(record, path)


def lr_at(run: dict, epoch: int) -> float:
    """The learning rate in effect during `epoch` (1-based): the base rate times the factor of the last
    schedule boundary at or before epoch − 1 (DeepOBS's lr_sched_epochs / lr_sched_factors)."""
    lr, factor = run["learning_rate"], 1.0
    for boundary, value in zip(run["lr_sched_epochs"] or (), run["lr_sched_factors"] or ()):
        factor = value if epoch - 1 >= boundary else factor
    return float("nan") if lr is None else float(lr) * factor


def metrics_rows(run: dict, epochs: int, columns: list[str]) -> list[dict]:
    """metrics.csv's rows of a parsed run: epochs 1…epochs (the curves' indices 1…epochs), `columns` present in
    the curves (others NaN), lr, no timings; the first epoch whose training loss diverges (metrics.diverged,
    against the loss before training) is marked and ends the rows.

    Raises:
        DataError: epochs exceed the run's num_epochs.
    """
    if epochs > run["num_epochs"]:
        raise DataError(f"a study of {epochs} epochs cannot be compared with published runs of {run['num_epochs']}")
    start, rows = run["curves"]["train_loss"][0], []
    for epoch in range(1, epochs + 1):
        values = {c: run["curves"][c][epoch] if c in run["curves"] else math.nan for c in columns}
        blown = diverged(run["curves"]["train_loss"][epoch], start)
        rows.append({"epoch": epoch, **values, "lr": lr_at(run, epoch), "momentum": run["hyperparams"].get(
            "momentum", run["hyperparams"].get("beta1", math.nan)), "epoch_seconds": math.nan,
            "eval_seconds": math.nan, "samples_per_second": math.nan, "diverged": blown})
        if blown:
            break
    return rows


# ---------------------------------------------------------------- importing one source's runs
def import_run(entry: dict, columns: list[str], cache_dir=CACHE_DIR, local_dir=None) -> dict:
    """Fetch one planned run (planned_runs) and write its folder (metrics.csv last); returns its parsed form.

    Raises:
        DataError: as fetch and read_run, or the file is another problem's, optimizer's or seed's.
    """
    source = get(entry["source"])
    path, verified = fetch(source, entry["file"], entry["sha1"], cache_dir, local_dir)
    run = read_run(path)
    found = (run["testproblem"], run["optimizer"], run["seed"])
    if found != (entry["problem"], entry["source_optimizer"], entry["seed"]):
        raise DataError(f"{path}: holds {found}, the manifest says {entry['problem'], entry['source_optimizer']}"
                        f", seed {entry['seed']}")
    out = Path(entry["dir"])
    out.mkdir(parents=True, exist_ok=True)
    spec = {"problem": entry["problem"], "optimizer_name": entry["optimizer"], "seed": entry["seed"],
            "epochs": entry["epochs"], "batch_size": run["batch_size"], "model": None, "dataset": None,
            "optimizer": {"class": run["optimizer"], "kwargs": {"lr": run["learning_rate"], **run["hyperparams"]}}}
    provenance = {"source": source.name, "title": source.title, "repository": source.repository,
                  "commit": source.commit, "release": source.release, "file": entry["file"], "licence": source.licence,
                  "framework": source.framework, "format": run["format"], "sha1": entry["sha1"],
                  "checksum_verified": verified, "read_from": str(path), "published_epochs": run["num_epochs"]}
    write_json(out / "run.json", {"spec": spec, "problem": entry["problem"], "published": provenance})
    write_rows(out / "metrics.csv", metrics_rows(run, entry["epochs"], columns),
               ["epoch", *columns, "lr", "momentum", "epoch_seconds", "eval_seconds", "samples_per_second",
                "diverged"])
    return run


def import_plan(part: dict, cache_dir=CACHE_DIR) -> int:
    """Import every run of a plan's settings["published"] ({"sources": {name: {runs, dir, ...}}, "columns":
    {problem: metric columns}}); returns how many."""
    count = 0
    for source in part.get("sources", {}).values():
        for entry in source["runs"]:
            import_run(entry, part["columns"][entry["problem"]], cache_dir, source.get("dir"))
            count += 1
    return count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Import the published runs a study's plan names into run folders.")
    parser.add_argument("--plan", required=True, help="the study's plan.json (its settings['published'])")
    parser.add_argument("--cache", default=CACHE_DIR, help="the folder of verified downloads (resources/published)")
    args = parser.parse_args(argv)
    part = json.loads(Path(args.plan).read_text())["settings"].get("published", {})
    try:
        count = import_plan(part, args.cache)
    except DataError as exc:
        raise SystemExit(str(exc)) from None
    print(f"imported {count} published runs")


if __name__ == "__main__":
    main()
