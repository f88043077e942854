"""A training job and the run store (optimbench.train.run with a store): the key resolved on the job's own
machine (CPU flags faked, and once for real in a private mount namespace), a fetch instead of training, a
publish after it, edit-and-revert costing no training, and code that changed since the plan refused."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optimbench import hardware, optim, store, train

AVX512_BF16_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2_FLAGS = frozenset({"avx", "avx2", "fma"})
SRC = Path(__file__).resolve().parents[1] / "src"


def job(spec, folder, shared, log=None, **kwargs) -> list[dict]:
    """One training job with the store, as the workflow runs it."""
    return train.run(spec, folder, threads=1, as_frame=False, run_store=train.Store(shared, log), **kwargs)


def on_cpu(monkeypatch, flags) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda path=hardware.CPUINFO: flags)


def losses(rows: list[dict]) -> list[float]:
    return [row["train_loss"] for row in rows]


def actions(log: Path) -> list[tuple[str, str]]:
    return [(r["action"], Path(r["run"]).name) for r in map(json.loads, log.read_text().splitlines())]


def test_a_run_on_a_cpu_with_native_bf16_is_never_served_to_one_without(tiny_spec, tmp_path, monkeypatch):
    """Issue 37.1: the key hashed the spec, where bf16 is "auto": a run published on an avx512_bf16 CPU (bf16
    autocast on) was fetched by a study on a CPU without it, whose own training gives other numbers."""
    spec, shared, log = {**tiny_spec, "epochs": 1, "bf16": "auto"}, tmp_path / "store", tmp_path / "store.jsonl"
    on_cpu(monkeypatch, AVX512_BF16_FLAGS)
    with_bf16 = job(spec, tmp_path / "bf16", shared, log)
    on_cpu(monkeypatch, AVX2_FLAGS)
    without = job(spec, tmp_path / "fp32", shared, log)
    assert without[0]["train_loss"] != with_bf16[0]["train_loss"]  # they compute different numbers...
    assert actions(log) == [("published", "bf16"), ("published", "fp32")]  # ...so each trained: two entries
    infos = [json.loads((tmp_path / f / "run.json").read_text()) for f in ("bf16", "fp32")]
    assert [i["execution"]["bf16_kernel"] for i in infos] == ["avx512_bf16", None]
    assert infos[0]["store_key"] != infos[1]["store_key"]
    assert all(store.holds(shared, i["store_key"]) for i in infos)


def test_two_machines_that_compute_the_same_numbers_share_an_entry(tiny_spec, tmp_path, monkeypatch):
    """bf16 off on both: a CPU with avx512_bf16 and one without run the same fp32 kernels: one entry, and the
    second machine's job fetches it (with its event files) instead of training."""
    spec, shared, log = {**tiny_spec, "epochs": 1, "bf16": "off"}, tmp_path / "store", tmp_path / "store.jsonl"
    on_cpu(monkeypatch, AVX512_BF16_FLAGS)
    first = job(spec, tmp_path / "a", shared, log)
    on_cpu(monkeypatch, AVX2_FLAGS)
    monkeypatch.setattr(train, "epoch_row", lambda *a, **k: pytest.fail("trained a run the store holds"))
    fetched = job(spec, tmp_path / "b", shared, log)
    assert actions(log) == [("published", "a"), ("fetched", "b")]
    assert losses(fetched) == losses(first)
    for name in ("metrics.csv", "run.json", "model.pt", "events.out.tfevents.000001.optimbench"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    assert store.marked_key(tmp_path / "b") == json.loads((tmp_path / "a" / "run.json").read_text())["store_key"]


def test_edit_and_revert_trains_nothing_the_store_holds(tiny_spec, tmp_path, monkeypatch):
    """Issue 37.4: introduce a change, run, revert, run: the run trained again although the store held it;
    now the job of the reverted spec fetches it into the same folder (no training, its own curves back)."""
    shared, log, folder = tmp_path / "store", tmp_path / "store.jsonl", tmp_path / "run"
    spec = {**tiny_spec, "epochs": 1}
    original = job(spec, folder, shared, log)
    kept = (folder / "metrics.csv").read_bytes()
    edited = job({**spec, "optimizer": {"class": "SGD", "kwargs": {"lr": 0.2}}}, folder, shared, log)
    assert losses(edited) != losses(original) and store.marked_key(folder) is None
    monkeypatch.setattr(train, "epoch_row", lambda *a, **k: pytest.fail("trained a run the store holds"))
    assert losses(job(spec, folder, shared, log)) == losses(original)
    assert (folder / "metrics.csv").read_bytes() == kept
    assert actions(log) == [("published", "run"), ("published", "run"), ("fetched", "run")]
    assert json.loads((folder / "run.json").read_text())["spec"]["optimizer"]["kwargs"]["lr"] == 0.05


def test_a_damaged_entry_is_skipped_and_the_run_trains(tiny_spec, tmp_path):
    shared, log = tmp_path / "store", tmp_path / "store.jsonl"
    spec = {**tiny_spec, "epochs": 1}
    first = job(spec, tmp_path / "a", shared, log)
    entry = store.entry(shared, json.loads((tmp_path / "a" / "run.json").read_text())["store_key"])
    os.chmod(entry, 0o755)
    os.chmod(entry / "metrics.csv", 0o644)
    (entry / "metrics.csv").write_text("epoch\n1\n")
    assert losses(job(spec, tmp_path / "b", shared, log)) == losses(first)  # trained: bit-identical on the CPU
    assert actions(log) == [("published", "a"), ("skipped", "b"), ("skipped", "b")]
    assert [r["why"] for r in map(json.loads, log.read_text().splitlines())][1:] == [
        "entry not usable (DamagedEntry)", "the store holds it already"]


def test_a_plugin_edited_between_planning_and_running_is_refused(tiny_spec, tmp_path):
    """Issue 37.2: the fingerprint was taken when Snakemake planned, the file imported when the job started:
    an edit in between published the edited code's numbers under the original's key."""
    plugin = tmp_path / "sign.py"
    source = "import torch\n\n\nclass Sign(torch.optim.SGD):\n    pass\n"
    plugin.write_text(source)
    entry = {"class": f"{plugin}:Sign", "kwargs": {"lr": 0.05}}
    planned = optim.code_fingerprint(entry["class"])
    plugin.write_text(source + "# an edit while the study runs\n")
    spec = {**tiny_spec, "epochs": 1, "optimizer": {**entry, "code": planned}}
    script = (f"import sys; sys.path.insert(0, {str(SRC)!r}); from optimbench import train; "
              f"train.main(['--spec', {json.dumps(spec)!r}, '--out', {str(tmp_path / 'run')!r}, '--execution', "
              f"{json.dumps({'store': str(tmp_path / 'store')})!r}])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    now = optim.provenance.source_hash(plugin)
    assert done.returncode != 0
    assert f"{plugin} ({plugin}:Sign) has fingerprint" in done.stderr
    assert planned["sha256"] in done.stderr and now in done.stderr
    assert not (tmp_path / "run" / "metrics.csv").exists() and not (tmp_path / "store").exists()


@pytest.mark.root
def test_a_real_cpu_with_other_flags_resolves_another_key(tiny_spec, tmp_path):
    """The same through the kernel: a job in a private mount namespace whose /proc/cpuinfo lacks (or gains)
    avx512_bf16 resolves bf16 otherwise and so another key; it trains rather than fetch this CPU's run."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare (CI runs as root)")
    text = Path("/proc/cpuinfo").read_text()
    native = hardware.native_bf16(hardware.cpu_flags())
    faked = (text.replace(" amx_bf16", "").replace(" avx512_bf16", "") if native else
             "\n".join(line + " avx512_bf16" if line.startswith("flags") else line for line in text.splitlines()))
    (tmp_path / "cpuinfo").write_text(faked)
    spec, shared = {**tiny_spec, "epochs": 1, "bf16": "auto"}, tmp_path / "store"
    job(spec, tmp_path / "here", shared)
    execution = json.dumps({"store": str(shared)})
    script = (f"import sys; sys.path.insert(0, {str(SRC)!r}); from optimbench import train; "
              f"train.main(['--spec', {json.dumps(spec)!r}, '--out', {str(tmp_path / 'there')!r}, "
              f"'--execution', {execution!r}])")
    mounted = f"mount --bind {tmp_path / 'cpuinfo'} /proc/cpuinfo && exec \"$@\""
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", mounted, "sh",
                           sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    here, there = (json.loads((tmp_path / f / "run.json").read_text()) for f in ("here", "there"))
    assert (here["bf16"], there["bf16"]) == (bool(native), not native)
    assert here["store_key"] != there["store_key"] and store.marked_key(tmp_path / "there") is None
    assert len(list(shared.glob("*/*/entry.json"))) == 2
