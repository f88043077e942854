"""The importer of published runs (optimbench.published) on a real subset of the DeepOBS baselines v1.1
(tests/data/deepobs-v1.1, MIT): values read back equal the JSON's, the format detected, the checksums and the cache."""

from __future__ import annotations

import io
import json
import math
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from optimbench import config as study_config
from optimbench import plan as plans
from optimbench import published
from optimbench.compare import lookup, study_comparisons
from optimbench.errors import ConfigError, DataError

from helpers import ROOT

FIXTURE = Path(__file__).parent / "data" / "deepobs-v1.1"
COLUMNS = ["train_loss", "test_loss"]


def fixture_runs(tmp_path, seeds=(42, 43, 44), epochs=100):
    runs = published.planned_runs("deepobs-v1.1", {"optimizers": ["SGD", "Momentum", "Adam"]},
                                  {"quadratic_deep": epochs}, str(tmp_path))
    return [r for r in runs if r["seed"] in seeds]


def test_planned_runs_name_the_published_setting_and_mark_the_source(tmp_path):
    runs = published.planned_runs("deepobs-v1.1", {"optimizers": ["Adam"]}, {"quadratic_deep": 100}, str(tmp_path))
    assert [r["seed"] for r in runs] == list(range(42, 52))
    assert {r["optimizer"] for r in runs} == {"Adam [deepobs-v1.1]"}
    assert runs[0]["setting"] == ("num_epochs__100__batch_size__128__beta1__9.e-01__beta2__9.99e-01__epsilon__1.e-08"
                                  "__lr__3.9810717055e-02")
    assert runs[0]["dir"] == f"{tmp_path}/published/deepobs-v1.1/quadratic_deep/AdamOptimizer/seed42"
    with pytest.raises(DataError, match="'Adamw' is not one of its optimizers"):
        published.planned_runs("deepobs-v1.1", {"optimizers": ["Adamw"]}, {"quadratic_deep": 100}, str(tmp_path))


@pytest.mark.parametrize("entry", range(9))
def test_imported_values_equal_the_json(tmp_path, entry):
    run = fixture_runs(tmp_path)[entry]
    published.import_run(run, COLUMNS, local_dir=FIXTURE)
    record = json.loads((FIXTURE / run["file"]).read_text())
    metrics = pd.read_csv(Path(run["dir"]) / "metrics.csv")
    assert metrics["epoch"].tolist() == list(range(1, 101))
    assert metrics["train_loss"].tolist() == record["train_losses"][1:]  # index 0: before training
    assert metrics["test_loss"].tolist() == record["test_losses"][1:]
    assert metrics["lr"].tolist() == [record["learning_rate"]] * 100 and not metrics["diverged"].any()
    info = json.loads((Path(run["dir"]) / "run.json").read_text())
    assert info["spec"]["optimizer_name"].endswith("[deepobs-v1.1]") and info["spec"]["seed"] == record["random_seed"]
    assert info["spec"]["optimizer"]["kwargs"] == {"lr": record["learning_rate"], **record["hyperparams"]}
    source = info["published"]
    assert (source["repository"], source["commit"][:7], source["licence"], source["framework"], source["format"]) == (
        "fsschneider/DeepOBS_Baselines", "3da285a", "MIT", "TensorFlow 1.x", "deepobs-1.1")
    assert source["file"] == run["file"] and source["checksum_verified"] is False  # minibatch losses dropped


def test_a_shorter_study_cuts_the_published_curves(tmp_path):
    run = fixture_runs(tmp_path, seeds=(43,), epochs=5)[0]
    published.import_run(run, COLUMNS, local_dir=FIXTURE)
    record = json.loads((FIXTURE / run["file"]).read_text())
    assert pd.read_csv(Path(run["dir"]) / "metrics.csv")["test_loss"].tolist() == record["test_losses"][1:6]


def test_format_detection_reads_crowded_valley_layout():
    record = json.loads(next(FIXTURE.glob("quadratic_deep/MomentumOptimizer/*/*42*.json")).read_text())
    v11 = published.parse_run(record)
    # DeepOBS 1.2's layout (Crowded Valley's files), built from the same values
    v12 = {"testproblem": record["testproblem"], "batch_size": 128, "num_epochs": 100, "random_seed": 42,
           "l2_reg": None, "optimizer_name": "MomentumOptimizer",
           "optimizer_hyperparams": {"learning_rate": record["learning_rate"], **record["hyperparams"]},
           "training_params": {"lr_sched_epochs": [50], "lr_sched_factors": [0.1]},
           "train_losses": record["train_losses"], "test_losses": record["test_losses"],
           "valid_losses": record["test_losses"]}
    parsed = published.parse_run(v12)
    assert (v11["format"], parsed["format"]) == ("deepobs-1.1", "deepobs-1.2")
    assert parsed["learning_rate"] == v11["learning_rate"] and parsed["hyperparams"] == {"momentum": 0.99,
                                                                                         "use_nesterov": False}
    assert parsed["curves"]["val_loss"] == record["test_losses"]
    assert published.lr_at(parsed, 50) == record["learning_rate"]  # epoch 50 trains before the boundary
    assert published.lr_at(parsed, 51) == pytest.approx(record["learning_rate"] * 0.1)
    with pytest.raises(DataError, match="not a DeepOBS result JSON"):
        published.parse_run({"losses": []}, "x.json")
    with pytest.raises(DataError, match="test_loss has 3 values, num_epochs 100 needs 101"):
        published.parse_run({**record, "test_losses": [1.0, 2.0, 3.0]}, "x.json")


def test_a_diverged_published_run_is_marked_and_ends():
    run = {"curves": {"train_loss": [2.0, 1.0, math.nan, math.nan], "test_loss": [2.0, 1.0, math.nan, math.nan]},
           "num_epochs": 3, "learning_rate": 0.1, "lr_sched_epochs": None, "lr_sched_factors": None,
           "hyperparams": {}}
    rows = published.metrics_rows(run, 3, COLUMNS)
    assert [r["diverged"] for r in rows] == [False, True]
    with pytest.raises(DataError, match="study of 4 epochs"):
        published.metrics_rows(run, 4, COLUMNS)


def test_git_blob_sha1_is_gits_object_id():
    path = FIXTURE / "convergence_performance.json"
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout
    assert published.git_blob_sha1(path.read_bytes()) == expected.strip()
    # and the manifest's checksum of the targets file is that file's (it is unchanged in the fixture)
    assert published.manifest(published.get("deepobs-v1.1"))["targets"]["sha1"] == expected.strip()


def test_downloads_are_verified_then_cached(tmp_path, monkeypatch):
    source = published.get("deepobs-v1.1")
    payload = (FIXTURE / "convergence_performance.json").read_bytes()
    sha = published.git_blob_sha1(payload)
    calls = []

    def serve(body):
        def urlopen(url, timeout):
            calls.append(url)
            return io.BytesIO(body)
        return urlopen

    monkeypatch.setattr(published.urllib.request, "urlopen", serve(b"tampered"))
    with pytest.raises(DataError, match="not the published file; nothing was cached"):
        published.fetch(source, "convergence_performance.json", sha, tmp_path)
    assert not (tmp_path / "deepobs-v1.1" / "convergence_performance.json").exists()
    monkeypatch.setattr(published.urllib.request, "urlopen", serve(payload))
    path, verified = published.fetch(source, "convergence_performance.json", sha, tmp_path)
    assert verified and path.read_bytes() == payload
    assert calls[-1] == ("https://raw.githubusercontent.com/fsschneider/DeepOBS_Baselines/"
                         "3da285abf9786e823aaef6d0fc0c9c98ef5d6d83/convergence_performance.json")
    published.fetch(source, "convergence_performance.json", sha, tmp_path)
    assert len(calls) == 2  # the verified cache served the third request
    assert published.targets("deepobs-v1.1", cache_dir=tmp_path)["quadratic_deep"] == 87.70315464772136


def test_a_failed_download_names_the_offline_fix(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError("no network")

    monkeypatch.setattr(published.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="set published.deepobs-v1.1.dir"):
        published.fetch(published.get("deepobs-v1.1"), "x.json", "0" * 40, tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        published.fetch(published.get("deepobs-v1.1"), "x.json", None, tmp_path, local_dir=tmp_path)


# ---------------------------------------------------------------- the config key and the plan's published runs
def study(**published_settings):

    override = {"problems": ["quadratic_deep"], "train": {"optimizers": ["Adam"], "seeds": [0], "epochs": 3,
                                                          "batch_size": 128},
                "descent": {"groups": []}, "tune": {"enabled": False},
                "published": {"deepobs-v1.1": {"optimizers": ["SGD", "Adam"], **published_settings}}}
    merged = study_config.deep_merge(study_config.load_yaml_files([ROOT / "config.yaml"]), override)
    return plans.plan(study_config.validate(merged))


def test_the_plan_holds_the_published_runs_with_their_source():
    plan = study(seeds=[42, 43], dir=str(FIXTURE), calibrate={"Adam": "Adam"})
    runs = plan.published_runs()
    assert [(r["optimizer"], r["seed"], r["epochs"]) for r in runs] == [
        ("SGD [deepobs-v1.1]", 42, 3), ("SGD [deepobs-v1.1]", 43, 3), ("Adam [deepobs-v1.1]", 42, 3),
        ("Adam [deepobs-v1.1]", 43, 3)]
    part = plan.settings["published"]["sources"]["deepobs-v1.1"]
    assert part["calibrate"] == {"Adam [deepobs-v1.1]": "Adam"} and part["source"]["licence"] == "MIT"
    assert plan.published_files("metrics.csv")[0].endswith("published/deepobs-v1.1/quadratic_deep/"
                                                          "GradientDescentOptimizer/seed42/metrics.csv")
    assert plan.settings["published"]["columns"]["quadratic_deep"] == ["train_loss", "test_loss"]


@pytest.mark.parametrize("settings, message", [
    ({"optimizers": ["Adamm"]}, "'Adamm' is not one of its optimizers"),
    ({"seeds": [7]}, r"published.deepobs-v1.1.seeds: \[7\] are not published"),
    ({"dir": "/nonexistent"}, "published.deepobs-v1.1.dir = '/nonexistent' is not a folder"),
    ({"calibrate": {"Momentum": "Adam"}}, "published.deepobs-v1.1.calibrate.Momentum = 'Adam'"),
])
def test_bad_published_settings_name_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        study(**settings)


def test_a_study_longer_than_the_published_runs_is_refused():

    override = {"problems": ["quadratic_deep"], "train": {"optimizers": ["Adam"], "epochs": 150},
                "descent": {"groups": []}, "published": {"deepobs-v1.1": {"optimizers": ["Adam"]}}}
    merged = study_config.deep_merge(study_config.load_yaml_files([ROOT / "config.yaml"]), override)
    with pytest.raises(ConfigError, match="epochs of problem 'quadratic_deep' = 150: its published runs"):
        plans.plan(study_config.validate(merged))
    merged["published"] = {"crowded-valley": {"optimizers": ["Adam"]}}
    with pytest.raises(ConfigError, match="no manifest of its runs ships"):
        plans.plan(study_config.validate(merged))
    merged["published"] = {"deepobs-v2": {"optimizers": ["Adam"]}}
    with pytest.raises(ConfigError, match="unknown key"):
        study_config.validate(merged)


def test_another_batch_size_than_the_published_runs_is_warned_about():
    override = {"problems": ["quadratic_deep"], "train": {"optimizers": ["Adam"], "epochs": 3, "batch_size": 64},
                "descent": {"groups": []}, "published": {"deepobs-v1.1": {"optimizers": ["Adam"]}}}
    merged = study_config.deep_merge(study_config.load_yaml_files([ROOT / "config.yaml"]), override)
    with pytest.warns(UserWarning, match="batch_size of problem 'quadratic_deep' = 64: its published runs"):
        plans.plan(study_config.validate(merged))


def test_the_published_field_is_compared_by_the_one_procedure_never_paired():
    # The same seed numbers on both sides: own seeds pair (paired t), a published optimizer's never (Welch)
    mine, theirs, other = [87.10, 87.30, 87.15, 87.22], [87.12, 87.11, 87.13, 87.10], [87.40, 87.35, 87.50, 87.45]
    rows = [{"problem": "quadratic_deep", "optimizer": name, "seed": 42 + i, "final": v, "diverged": False,
             "published": name.endswith("]")}
            for name, values in (("Mine", mine), ("Adam [deepobs-v1.1]", theirs), ("Other", other))
            for i, v in enumerate(values)]
    table = study_comparisons(pd.DataFrame(rows), {"quadratic_deep": False}, 0.95, focus="Mine")
    field = lookup(table, "quadratic_deep", "Mine", "Adam [deepobs-v1.1]")
    assert (field["test"], bool(field["paired"])) == ("Welch t", False)
    assert field["p"] == pytest.approx(stats.ttest_ind(mine, theirs, equal_var=False).pvalue)
    own = lookup(table, "quadratic_deep", "Mine", "Other")
    assert (own["test"], own["p"]) == ("paired t", pytest.approx(stats.ttest_rel(mine, other).pvalue))


def crowded_valley_copy(root: Path) -> Path:
    """A local copy in Crowded Valley's layout (DeepOBS 1.2's JSON), from the fixture's real Adam runs: the final
    setting at seeds 42-44, and a search trial of another setting at seed 42 only."""
    results = root / "results" / "large_budget" / "cosine" / "quadratic_deep" / "AdamOptimizer"
    for path in sorted(FIXTURE.glob("quadratic_deep/AdamOptimizer/*/*.json")):
        record = json.loads(path.read_text())
        v12 = {"testproblem": "quadratic_deep", "batch_size": 128, "num_epochs": 100,
               "random_seed": record["random_seed"], "l2_reg": None, "optimizer_name": "AdamOptimizer",
               "optimizer_hyperparams": {"learning_rate": record["learning_rate"], **record["hyperparams"]},
               "training_params": {"lr_sched_epochs": None, "lr_sched_factors": None},
               "train_losses": record["train_losses"], "test_losses": record["test_losses"],
               "valid_losses": record["test_losses"]}
        for setting in ("num_epochs__100__batch_size__128__learning_rate__3.98e-02",
                        "num_epochs__100__batch_size__128__learning_rate__1.e-01")[:1 + (record["random_seed"] == 42)]:
            (results / setting).mkdir(parents=True, exist_ok=True)
            (results / setting / path.name).write_text(json.dumps(v12))
    return root


def test_crowded_valley_runs_join_from_a_local_copy(tmp_path):
    copy = crowded_valley_copy(tmp_path / "cv")
    override = {"problems": ["quadratic_deep"], "results_dir": str(tmp_path / "results"),
                "train": {"optimizers": ["Adam"], "seeds": [0], "epochs": 3, "batch_size": 128},
                "descent": {"groups": []}, "tune": {"enabled": False},
                "published": {"crowded-valley": {"optimizers": ["AdamOptimizer"], "dir": str(copy),
                                                 "subfolder": "results/large_budget/cosine"}}}
    merged = study_config.deep_merge(study_config.load_yaml_files([ROOT / "config.yaml"]), override)
    plan = plans.plan(study_config.validate(merged))
    runs = plan.published_runs()
    assert [(r["optimizer"], r["seed"]) for r in runs] == [("AdamOptimizer [crowded-valley]", s) for s in (42, 43, 44)]
    assert {r["setting"] for r in runs} == {"num_epochs__100__batch_size__128__learning_rate__3.98e-02"}
    assert published.import_plan(plan.settings["published"]) == 3
    record = json.loads(next(FIXTURE.glob("quadratic_deep/AdamOptimizer/*/*43*.json")).read_text())
    metrics = pd.read_csv(Path(runs[1]["dir"]) / "metrics.csv")
    assert metrics["test_loss"].tolist() == record["test_losses"][1:4]
    info = json.loads((Path(runs[1]["dir"]) / "run.json").read_text())["published"]
    assert (info["format"], info["checksum_verified"], info["framework"]) == ("deepobs-1.2", False,
                                                                              "TensorFlow 1.x (DeepOBS 1.2)")
    merged["published"]["crowded-valley"]["optimizers"] = ["Adam"]
    with pytest.raises(ConfigError, match="'Adam' is not one of its optimizers \\(AdamOptimizer\\)"):
        plans.plan(study_config.validate(merged))
