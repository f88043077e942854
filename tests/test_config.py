"""Config loading and validation: each kind of bad value gets its own clear error."""

import pytest

from optimbench import config
from helpers import ROOT

BASE = config.load_yaml_files([ROOT / "config.yaml"])


def check(override: dict) -> dict:
    return config.validate(config.deep_merge(BASE, override))


def test_default_config_is_the_article_study():
    cfg = config.load([ROOT / "config.yaml"])
    assert cfg["train"]["optimizers"] == ["SGD", "Adam", "Adadelta", "Adagrad", "AdamW", "Adamax", "ASGD"]
    assert cfg["optimizers"]["SGD"]["kwargs"] == {"lr": 0.01, "momentum": 0.9}
    assert cfg["optimizers"]["Adam"].get("kwargs") == {}  # PyTorch defaults, filled in by the schema
    assert (cfg["train"]["epochs"], cfg["train"]["batch_size"], cfg["train"]["seeds"]) == (50, 64, [0])
    assert cfg["train"]["model"] == "resnet18_article"
    assert cfg["data"]["source"] == "download"
    assert cfg["descent"]["h"] == 1e-3
    assert cfg["descent"]["methods"]["article-momentum-0.1"] == {"update": "momentum", "momentum": 0.1, "lr": 1e-5}


def test_demo_preset_overrides_only_what_it_names():
    cfg = config.load([ROOT / "config.yaml", ROOT / "config" / "presets" / "demo.yaml"])
    assert cfg["data"]["source"] == "digits"
    assert cfg["train"]["width"] == 8 and cfg["train"]["seeds"] == [0, 1, 2]
    assert cfg["train"]["batch_size"] == 64  # kept from config.yaml
    assert cfg["optimizers"]["SGD"]["kwargs"]["lr"] == 0.01  # the registry is inherited, not copied


def test_deep_merge_replaces_lists_and_merges_dicts():
    merged = config.deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1}


@pytest.mark.parametrize("override, message", [
    ({"train": {"epochs": "ten"}}, "train.epochs = 'ten' has the wrong type: expected integer"),
    ({"train": {"epochs": 0}}, "train.epochs = 0: 0 is less than the minimum of 1"),
    ({"trian": {}}, "unknown key(s) ['trian'] at <top level>"),
    ({"train": {"optimisers": ["SGD"]}}, "did you mean 'optimizers'?"),
    ({"data": {"source": "web"}}, "data.source = 'web' is not one of ['download', 'archive', 'digits', 'synthetic']"),
    ({"train": {"seeds": [1, 1]}}, "train.seeds = [1, 1]: [1, 1] has non-unique elements"),
    ({"descent": {"groups": [{"name": "g", "functions": ["sphere"], "methods": ["SGD"], "gradients": ["central"]}]}},
     "descent.groups.0.functions.0 = 'sphere' is not one of"),
])
def test_schema_errors_name_the_key_and_value(override, message):
    with pytest.raises(config.ConfigError) as info:
        check(override)
    assert message in str(info.value)
    assert "Fix these keys" in str(info.value)


def test_unknown_optimizer_name_suggests_the_closest():
    with pytest.raises(config.ConfigError, match=r"unknown optimizer 'Adamm' in train.optimizers.*Did you mean 'Adam'"):
        check({"train": {"optimizers": ["SGD", "Adamm"]}})


def test_unknown_descent_method():
    group = {"name": "g", "functions": ["ackley"], "methods": ["Nesterov"], "gradients": ["central"]}
    with pytest.raises(config.ConfigError, match=r"unknown descent method 'Nesterov' in descent.groups\[g\]"):
        check({"descent": {"groups": [group]}})


def test_optimizer_class_that_does_not_import():
    with pytest.raises(config.ConfigError, match=r"optimizers.Mine.class = 'torch.optim.Nope' cannot be imported"):
        check({"optimizers": {"Mine": {"class": "torch.optim.Nope"}}})
    with pytest.raises(config.ConfigError, match=r"optimizers.Mine.class = 'Sgd' cannot be imported"):
        check({"optimizers": {"Mine": {"class": "Sgd"}}})


def test_dotted_class_paths_are_accepted():
    cfg = check({"optimizers": {"QHM": {"class": "pytorch_optimizer.QHM"}}, "train": {"optimizers": ["QHM"]}})
    assert cfg["train"]["optimizers"] == ["QHM"]


def test_momentum_update_needs_a_momentum():
    with pytest.raises(config.ConfigError, match="descent.methods.m uses update: momentum but sets no `momentum`"):
        check({"descent": {"methods": {"m": {"update": "momentum", "lr": 0.1}}}})


def test_pretrained_weights_need_the_article_model_at_full_width():
    with pytest.raises(config.ConfigError, match="train.pretrained needs train.model: resnet18_article"):
        check({"train": {"pretrained": "w.pth", "model": "resnet18_cifar"}})


def test_missing_config_file():
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load([ROOT / "nope.yaml"])
