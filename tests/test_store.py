"""The run store shared between studies (optimbench.store): publish, fetch, and the sync at the workflow's ends."""

import json
from pathlib import Path

from optimbench import store

KEY, OTHER = "ab" + "1" * 30, "cd" + "2" * 30
SPEC = {"seed": 0, "optimizer": {"class": "SGD"}}


def run_files(folder: Path, model: bool = True) -> dict:
    """A training run's files as the workflow names them (a trial has no model)."""
    return {n: folder / n for n in ["run.json", "metrics.csv"] + (["model.pt"] if model else [])}


def finished_run(folder: Path, text: str, spec=SPEC, model: bool = True) -> dict:
    """A run as the trainer leaves it; run.json records `spec` plus an execution setting."""
    files = run_files(folder, model)
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in files.items():
        path.write_text(json.dumps({"spec": {**spec, "compile": "auto"}}) if name == "run.json" else text + name)
    return files


def contents(files: dict) -> dict[str, str]:
    return {name: Path(path).read_text() for name, path in files.items()}


def test_a_published_run_is_fetched_into_another_study_as_it_was(tmp_path):
    shared = tmp_path / "store"
    trained = finished_run(tmp_path / "a" / "run", "0.5")
    assert store.publish(shared, KEY, trained, SPEC)
    assert json.loads((shared / KEY[:2] / KEY / "spec.json").read_text()) == SPEC
    assert not list(shared.glob(".publish-*"))  # the temp folder went in whole
    target = run_files(tmp_path / "b" / "run")
    assert store.fetch(shared, KEY, target)
    assert contents(target) == contents(trained)
    assert not (tmp_path / "b" / "run" / store.MARKER).exists()


def test_an_entry_is_never_replaced_and_an_unfinished_run_never_published(tmp_path):
    shared = tmp_path / "store"
    assert store.publish(shared, KEY, finished_run(tmp_path / "a" / "run", "first"), SPEC)
    assert not store.publish(shared, KEY, finished_run(tmp_path / "b" / "run", "second"), SPEC)
    assert (shared / KEY[:2] / KEY / "metrics.csv").read_text() == "firstmetrics.csv"
    unfinished = finished_run(tmp_path / "c" / "run", "c")
    unfinished["model.pt"].unlink()
    assert not store.publish(shared, OTHER, unfinished, SPEC) and not (shared / OTHER[:2] / OTHER).exists()


def test_fetch_writes_nothing_without_every_wanted_file(tmp_path):
    shared = tmp_path / "store"
    store.publish(shared, KEY, finished_run(tmp_path / "trial", "t", model=False), SPEC)
    target = run_files(tmp_path / "study" / "run")
    assert not store.fetch(shared, KEY, target)  # a training run needs its model.pt
    assert not store.fetch(shared, OTHER, target) and not (tmp_path / "study").exists()
    assert store.fetch(shared, KEY, run_files(tmp_path / "study" / "trial", model=False))


def test_sync_publishes_own_runs_fetches_missing_ones_and_clears_a_changed_one(tmp_path):
    shared = tmp_path / "store"
    own = finished_run(tmp_path / "a" / "own", "own")
    old = finished_run(tmp_path / "a" / "old", "old", spec={**SPEC, "seed": 9})  # run.json of an older spec
    assert store.sync(shared, [(KEY, own, SPEC), (OTHER, old, SPEC)]) == set()
    assert store.holds(shared, KEY) and not store.holds(shared, OTHER)  # the stale run is not published

    missing = run_files(tmp_path / "b" / "run")
    assert store.sync(shared, [(KEY, missing, SPEC)]) == {str(tmp_path / "b" / "run")}
    assert json.loads((tmp_path / "b" / "run" / store.MARKER).read_text()) == {"key": KEY, "store": str(shared)}
    assert contents(missing) == contents(own)
    # The same plan again: the fetched run stays (and is not published back); a changed spec clears it.
    assert store.sync(shared, [(KEY, missing, SPEC)]) == {str(tmp_path / "b" / "run")}
    assert store.sync(shared, [(OTHER, missing, {**SPEC, "seed": 1})]) == set()
    assert list((tmp_path / "b" / "run").iterdir()) == [] and not missing["model.pt"].exists()
    assert store.holds(shared, KEY)  # the entry stays
    assert store.sync(None, [(KEY, run_files(tmp_path / "x"), SPEC)]) == set()  # no store: nothing


def test_the_store_comes_from_the_config_else_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(store.STORE_ENV, raising=False)
    assert store.location(None) is None
    monkeypatch.setenv(store.STORE_ENV, "/lab/store")
    assert store.location(None) == Path("/lab/store")
    assert store.location("~/runs") == Path.home() / "runs"
    monkeypatch.chdir(tmp_path)
    assert store.location("shared") == tmp_path / "shared"
