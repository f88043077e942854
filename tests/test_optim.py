"""The optimizer registry and learning-rate schedules."""

import hashlib
import importlib.metadata
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

from optimbench import config, optim, plan, provenance, specs, store
from optimbench.labels import code_label
from optimbench.optim import (
    OptimizerClassError,
    build_optimizer,
    code_fingerprint,
    lr_lambda,
    resolve_class,
)

from helpers import ROOT


def test_short_names_are_torch_optim_classes():
    assert resolve_class("SGD") is torch.optim.SGD
    assert resolve_class("ASGD") is torch.optim.ASGD  # averaged SGD, the article's


def test_dotted_paths_reach_any_installed_package():
    import pytorch_optimizer

    assert resolve_class("pytorch_optimizer.QHM") is pytorch_optimizer.QHM
    assert resolve_class("torch.optim.Adam") is torch.optim.Adam


def test_unknown_names_raise():
    with pytest.raises(OptimizerClassError, match="'Sgd' is neither a torch.optim optimizer"):
        resolve_class("Sgd")
    with pytest.raises(OptimizerClassError, match="no module named 'no_such_package'"):
        resolve_class("no_such_package.Opt")


def test_kwargs_and_overrides():
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer({"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}, params, {"lr": 0.5})
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["momentum"] == 0.9
    assert build_optimizer({"class": "Adam"}, params).param_groups[0]["lr"] == 1e-3  # PyTorch default


def test_schedules():
    assert lr_lambda(None, 10)(7) == 1.0
    assert lr_lambda("linear", 10)(5) == 0.5
    assert lr_lambda("cosine", 10)(0) == 1.0
    assert math.isclose(lr_lambda("cosine", 10)(5), 0.5)
    assert math.isclose(lr_lambda("cosine", 10)(10), 0.0, abs_tol=1e-12)
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        lr_lambda("step", 10)


# ---------------------------------------------------------------- plug-ins from a file or a local module
LION = ROOT / "examples" / "optimizers" / "lion.py"
SIGN_SGD = """import torch


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1):
        if lr <= 0:
            raise ValueError(f"lr = {lr} must be > 0")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(torch.sign(p.grad), alpha=-group["lr"])


class NotAnOptimizer:
    pass
"""


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def own_study(folder: Path, source: str = SIGN_SGD, entry: str = "{class: opt/sign.py:SignSGD}") -> Path:
    """A study folder: opt/sign.py holding `source`, own.yaml naming it (a path relative to own.yaml)."""
    (folder / "opt").mkdir(parents=True, exist_ok=True)
    (folder / "opt" / "sign.py").write_text(source)
    (folder / "own.yaml").write_text(f"optimizers:\n  Sign: {entry}\ntrain: {{optimizers: [SGD, Sign]}}\n")
    return folder / "own.yaml"


def test_a_file_class_counts_from_the_config_file_that_names_it(tmp_path, monkeypatch):
    own = own_study(tmp_path / "study")
    monkeypatch.chdir(tmp_path)  # not the config's folder: the path still counts from own.yaml
    cfg = config.load([ROOT / "config.yaml", own])
    assert cfg["optimizers"]["Sign"]["class"] == f"{tmp_path / 'study' / 'opt' / 'sign.py'}:SignSGD"
    cls = resolve_class(cfg["optimizers"]["Sign"]["class"])
    assert cls.__name__ == "SignSGD" and issubclass(cls, torch.optim.Optimizer)
    # Snakemake merges the files itself: the workflow resolves against the file that set the value.
    merged = config.deep_merge(config.read_yaml_file(ROOT / "config.yaml"), config.read_yaml_file(own))
    assert config.absolute_class_files(merged, [ROOT / "config.yaml", own])["optimizers"]["Sign"] == \
        {"class": cfg["optimizers"]["Sign"]["class"]}


def test_a_dotted_path_imports_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "h1_local_opt.py").write_text(SIGN_SGD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert resolve_class("h1_local_opt.SignSGD").__module__ == "h1_local_opt"
    assert code_fingerprint("h1_local_opt.SignSGD") == {"file": "h1_local_opt.py",
                                                        "sha256": _sha(tmp_path / "h1_local_opt.py")}


def test_code_fingerprints_follow_the_code_that_computes_the_steps(tmp_path):
    import optimbench.demon
    import optimbench.yellowfin

    assert code_fingerprint("SGD") == {"torch": torch.__version__}
    assert code_fingerprint("Adam", demon=True) == {"torch": torch.__version__,
                                                    "demon": _sha(optimbench.demon.__file__)}
    assert code_fingerprint("QHM") == {"package": "pytorch_optimizer",
                                       "version": importlib.metadata.version("pytorch_optimizer")}
    assert code_fingerprint("YellowFin") == {"module": "optimbench.yellowfin",
                                             "sha256": _sha(optimbench.yellowfin.__file__)}
    assert code_fingerprint(f"{LION}:Lion") == {"file": "lion.py", "sha256": _sha(LION)}


def test_editing_a_plugin_file_changes_exactly_its_runs_specs_and_the_store_key_ignores_its_folder(tmp_path):
    own_a, own_b = own_study(tmp_path / "a"), own_study(tmp_path / "b")

    def specs_of(own):
        cfg = config.load([ROOT / "config.yaml", own])
        return {o: specs.train_spec(cfg, "digits-resnet18", o, 0, "d.npz") for o in ("SGD", "Sign")}

    before = specs_of(own_a)
    assert before["Sign"]["optimizer"]["code"] == {"file": "sign.py", "sha256": _sha(tmp_path / "a/opt/sign.py")}
    assert store.spec_key(before["Sign"]) == store.spec_key(specs_of(own_b)["Sign"])  # one file, two folders
    (tmp_path / "a" / "opt" / "sign.py").write_text(SIGN_SGD + "# an edit\n")
    after = specs_of(own_a)
    assert after["SGD"] == before["SGD"] and after["Sign"] != before["Sign"]
    assert store.spec_key(after["Sign"]) != store.spec_key(before["Sign"])


def fake_distribution(site: Path, name: str, version: str, source: str, direct_url: dict | None) -> Path:
    """A package `name` (name/__init__.py) with its dist-info as pip leaves it, on a folder of sys.path: an
    editable or local install (PEP 610 direct_url.json with dir_info) or one from an index (none)."""
    package = site / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    (package / "rule.py").write_text("SCALE = 1.0\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return package


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Fake installs on sys.path, with the registry's caches cleared around the test."""
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    optim._distributions.cache_clear()
    yield tmp_path / "site"
    optim._distributions.cache_clear()
    for name in [m for m in sys.modules if m.startswith(("myopt", "hubopt"))]:
        del sys.modules[name]


def test_an_editable_package_is_fingerprinted_by_its_sources_not_its_version(installed):
    """Issue 37.2: `pip install -e` of one's own package, edit, run: "Nothing to be done" (the version did not
    change); a package from an index keeps its version as its fingerprint."""
    source = SIGN_SGD.replace("class SignSGD", "class MyOpt")
    package = fake_distribution(installed, "myopt", "0.1", source,
                                {"url": "file:///home/me/myopt", "dir_info": {"editable": True}})
    fake_distribution(installed, "hubopt", "2.0", source, None)
    before = code_fingerprint("myopt.MyOpt")
    assert before == {"package": "myopt", "version": "0.1", "sha256": provenance.sources_hash(package)}
    assert code_fingerprint("hubopt.MyOpt") == {"package": "hubopt", "version": "2.0"}
    (package / "rule.py").write_text("SCALE = 2.0\n")  # an edit of a module the class's file imports
    assert code_fingerprint("myopt.MyOpt") == {**before, "sha256": provenance.sources_hash(package)} != before
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):  # the hash, by hand: relative paths and bytes, in order
        digest.update(f"myopt/{path.name}\0".encode() + path.read_bytes())
    assert provenance.sources_hash(package) == digest.hexdigest()[:16]
    assert provenance.code_now(before, "myopt.MyOpt") == code_fingerprint("myopt.MyOpt")  # status's view, no import


@pytest.mark.parametrize("entry, source, message", [
    ("{class: opt/missing.py:SignSGD}", SIGN_SGD,
     r"optimizers.Sign.class = '\S+/opt/missing.py:SignSGD': the file \S+/opt/missing.py does not exist; give the "
     r"path of a .py file relative to the config file"),
    ("{class: opt/sign.py:SignSGD}", SIGN_SGD.replace("def step(self, closure=None):", "def step(self, closure=None)"),
     # line 11 of SIGN_SGD: `def step(...)` without its colon
     r"optimizers.Sign.class = '\S+/opt/sign.py:SignSGD': \S+/opt/sign.py:11: syntax error \(.*\); fix the file"),
    ("{class: opt/sign.py:SignSDG}", SIGN_SGD,
     r"optimizers.Sign.class = '\S+:SignSDG': \S+/opt/sign.py has no class 'SignSDG' \(its optimizer classes: "
     r"\['SignSGD'\]\); fix the name"),
    ("{class: opt/sign.py:NotAnOptimizer}", SIGN_SGD,
     r"optimizers.Sign.class = '\S+:NotAnOptimizer': NotAnOptimizer in \S+/opt/sign.py is not a "
     r"torch.optim.Optimizer subclass .*subclasses torch.optim.Optimizer and implements step\(\)"),
    ("{class: opt/sign.py:SignSGD, kwargs: {lr: -1}}", SIGN_SGD,
     r"optimizers.Sign.kwargs.lr = -1 is refused by SignSGD \(\S+:SignSGD\) for optimizer 'Sign' "
     r"\(built and stepped once on cpu, as its train jobs will\): "
     r"ValueError: lr = -1 must be > 0"),
    ("{class: opt/sign.py:SignSGD, kwargs: {momentum: 0.9}}", SIGN_SGD,
     r"optimizers.Sign.kwargs.momentum: SignSGD \(\S+\) takes no argument 'momentum'; its arguments: \['lr'\]"),
], ids=["missing-file", "syntax-error", "no-such-class", "not-an-optimizer", "constructor-refuses", "unknown-kwarg"])
def test_each_bad_plugin_is_named_by_the_config_check(tmp_path, monkeypatch, capsys, entry, source, message):
    own = own_study(tmp_path, source, entry)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        plan.main(["--check", str(ROOT / "config.yaml"), str(own)])
    assert re.search(message, str(stop.value)), stop.value


# ---------------------------------------------------------------- the worked example: Lion
def test_lion_follows_algorithm_2_of_chen_et_al_by_hand():
    """Two steps worked by hand from the paper's formula (β1 0.9, β2 0.99, η 0.1, λ 0.5). Step 2's first
    coordinate moves against its gradient's sign: the momentum of step 1 outweighs it in c_2."""
    lion = resolve_class(f"{LION}:Lion")
    theta = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    optimizer = lion([theta], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    # step 1: c = 0.1·g = [0.03, -0.02, 0] → sign [1, -1, 0]; θ = θ - 0.1·(sign + 0.5·θ); m = 0.01·g
    theta.grad = torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64)
    optimizer.step()
    assert torch.allclose(theta.detach(), torch.tensor([0.85, -1.8, 0.475], dtype=torch.float64))
    # step 2: c = 0.9·[0.003, -0.002, 0] + 0.1·g = [0.0017, 0.0482, -0.004] → sign [1, 1, -1]
    theta.grad = torch.tensor([-0.01, 0.5, -0.04], dtype=torch.float64)
    optimizer.step()
    assert torch.allclose(theta.detach(), torch.tensor([0.7075, -1.81, 0.55125], dtype=torch.float64))
    # m_2 = 0.99·m_1 + 0.01·g_2
    assert torch.allclose(optimizer.state[theta]["exp_avg"], torch.tensor([0.00287, 0.00302, -0.0004],
                                                                            dtype=torch.float64))


def test_lion_refuses_settings_out_of_range():
    lion = resolve_class(f"{LION}:Lion")
    for bad in ({"lr": 0.0}, {"betas": (0.9, 1.0)}, {"weight_decay": -0.1}):
        with pytest.raises(ValueError, match="Lion: "):
            lion([torch.zeros(1, requires_grad=True)], **bad)


def test_code_labels_for_the_run_table():
    assert code_label({"torch": "2.5.1"}) == "torch 2.5.1"
    assert code_label({"torch": "2.5.1", "demon": "ab12"}) == "torch 2.5.1 + demon sha256:ab12"
    assert code_label({"package": "pytorch_optimizer", "version": "3.1.0"}) == "pytorch_optimizer 3.1.0"
    assert code_label({"file": "lion.py", "sha256": "1a2b"}) == "lion.py sha256:1a2b"
    assert code_label({"module": "optimbench.yellowfin", "sha256": "3c"}) == "optimbench.yellowfin sha256:3c"
    assert code_label(None) == ""  # a run recorded before fingerprints


def test_the_compare_preset_runs_the_example_against_its_baselines_on_the_demo_problems():
    cfg = config.load([ROOT / "config.yaml", ROOT / "config" / "presets" / "compare.yaml"])
    assert cfg["optimizers"]["Lion"]["class"] == f"{LION}:Lion" and cfg["report"]["focus"] == "Lion"
    the_plan = plan.plan(cfg)
    demo = config.load([ROOT / "config.yaml", ROOT / "config" / "presets" / "demo.yaml"])
    assert list(the_plan.problems) == demo["problems"] and cfg["data"] == demo["data"]  # offline, minutes
    lion = [run for run in the_plan.train_runs if run.optimizer == "Lion"]
    assert len(lion) == len(cfg["problems"]) * len(cfg["train"]["seeds"])
    assert {run.spec["optimizer"]["code"]["sha256"] for run in lion} == {_sha(LION)}


def test_a_module_that_fails_on_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "h1_broken_opt.py").write_text("import torch\nraise RuntimeError('half-written')\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('half-written')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(OptimizerClassError, match="module h1_broken_opt fails on import: RuntimeError: half-written"):
        resolve_class("h1_broken_opt.Opt")
    with pytest.raises(OptimizerClassError, match=r"broken.py fails on import: RuntimeError: half-written; fix"):
        resolve_class(f"{tmp_path / 'broken.py'}:Opt")
