"""The field, already trained (README: Published baselines): a study trains only the focus optimizer on DeepOBS's
quadratic_deep and imports SGD, Momentum and Adam from the DeepOBS baselines v1.1 (the real subset in tests/data,
MIT); it runs to a report whose first screen compares the focus optimizer with them, names their source and
states the calibration of this study's own Adam against the published one."""

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import ROOT, job_counts, snakemake, write_config

pytestmark = pytest.mark.workflow
FIXTURE = ROOT / "tests" / "data" / "deepobs-v1.1"
EPOCHS, SEEDS = 4, [42, 43, 44]


def test_focus_against_the_published_field_with_its_source_and_calibration(tmp_path):
    config = write_config(
        tmp_path / "field.yaml", results_dir="results", problems=["quadratic_deep"],
        train={"epochs": EPOCHS, "batch_size": 128, "eval_batch_size": 1000, "seeds": SEEDS, "gpus": 0, "threads": 1,
               "optimizers": ["Adam-deepobs"], "device": "cpu"},
        optimizers={"Adam-deepobs": {"class": "Adam", "kwargs": {"lr": 3.9810717055e-02}}},
        published={"deepobs-v1.1": {"optimizers": ["SGD", "Momentum", "Adam"], "seeds": SEEDS, "dir": str(FIXTURE),
                                    "calibrate": {"Adam": "Adam-deepobs"}}},
        report={"focus": "Adam-deepobs"}, descent={"groups": []}, tune={"enabled": False})
    result = snakemake(tmp_path, config, "--cores", "2")
    counts = job_counts(result.stdout + result.stderr)
    assert (counts["train"], counts["import_published"]) == (3, 1)  # only the focus optimizer trains

    tables = tmp_path / "results" / "tables"
    seeds = pd.read_parquet(tables / "seed_summary.parquet")
    assert sorted(set(seeds["optimizer"])) == ["Adam [deepobs-v1.1]", "Adam-deepobs", "Momentum [deepobs-v1.1]",
                                               "SGD [deepobs-v1.1]"]
    published = seeds[seeds["optimizer"] == "Adam [deepobs-v1.1]"].sort_values("seed")
    expected = [json.loads(next(FIXTURE.glob(f"quadratic_deep/AdamOptimizer/*/random_seed__{s}__*.json"))
                           .read_text())["test_losses"][EPOCHS] for s in SEEDS]
    assert published["final"].tolist() == expected  # the published curves, cut at the study's epochs
    assert published["seed"].tolist() == SEEDS and published["mean_epoch_seconds"].isna().all()
    calibration = pd.read_parquet(tables / "calibration.parquet")
    assert set(calibration["published"]) == {"Adam [deepobs-v1.1]"} and set(calibration["own"]) == {"Adam-deepobs"}
    focus = pd.read_parquet(tables / "focus.parquet").set_index("baseline")
    assert set(focus["test"]) == {"Welch t"}  # their seeds are theirs: never paired with this study's 42-44
    assert focus.loc["Adam [deepobs-v1.1]", "calibration"].startswith(
        "compared with the published Adam [deepobs-v1.1]; this study's own Adam-deepobs")
    assert focus.loc["SGD [deepobs-v1.1]", "calibration"].startswith("compared with the published SGD [deepobs-v1.1]; "
                                                                     "not calibrated")

    body = (tmp_path / "results" / "report" / "study.html").read_text()
    first_screen = body[body.index("The answer"):body.index('id="per-problem"')]
    for words in ("Published runs, not trained here", "DeepOBS baselines v1.1", "fsschneider/DeepOBS_Baselines",
                  "licence MIT", "TensorFlow 1.x", "Adam-deepobs against the field", "Momentum [deepobs-v1.1]",
                  "SGD [deepobs-v1.1]", "this study's own Adam-deepobs",
                  "compared with the published Adam [deepobs-v1.1]; this study's own Adam-deepobs"):
        assert words in first_screen, words
    assert "of 0 seeds" not in first_screen  # Welch comparisons state no seed-by-seed count
    assert Path(tmp_path / "results" / "published" / "deepobs-v1.1" / "quadratic_deep" / "AdamOptimizer" / "seed42"
                / "run.json").exists()
