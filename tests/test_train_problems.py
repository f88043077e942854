"""The trainer on every task of the problem registry: VGG classification, CapsNet, VAE, PTB language model,
each on tiny data in its data set's real file format (optimbench.formats); the loop's parts by hand."""

import contextlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from optimbench import device_data, formats, problems, train
from optimbench.formats import canonical

from helpers import PYTHON, ROOT, assert_identical_runs, run_env, run_interrupted_after

TIMING = ["epoch_seconds", "eval_seconds", "samples_per_second"]
CPU = torch.device("cpu")
ADAM = {"class": "Adam", "kwargs": {"lr": 1e-3}}


def prepare(tmp_path_factory, dataset, cfg) -> str:
    out = tmp_path_factory.mktemp(dataset)
    formats.prepare(dataset, cfg, out / "d.npz", out / "d.json")
    return str(out / "d.npz")


@pytest.fixture(scope="module")
def digits_mnist(tmp_path_factory) -> str:
    """scikit-learn's digits as MNIST's IDX files: 1,348 training and 449 test images 28×28×1."""
    return prepare(tmp_path_factory, "mnist", {"source": "digits"})


@pytest.fixture(scope="module")
def cifar100_npz(tmp_path_factory) -> str:
    return prepare(tmp_path_factory, "cifar100", {"source": "synthetic", "synthetic": {"train_size": 96,
                                                                                      "test_size": 40}})


@pytest.fixture(scope="module")
def ptb_npz(tmp_path_factory) -> str:
    return prepare(tmp_path_factory, "ptb", {"source": "synthetic", "synthetic": {"words": 30, "train_lines": 300,
                                                                                 "test_lines": 60}})


def spec_for(problem, data_path, width, **changes) -> dict:
    spec = {"problem": problem, "data": data_path, "model": problems.get(problem).model, "width": width,
            "epochs": 2, "batch_size": 32, "eval_batch_size": 100, "seed": 0, "optimizer": ADAM,
            "train_subset": 128, "test_subset": 64, "device": "cpu", "bf16": "off"}
    return {**spec, **changes}


def expected_columns(*names) -> list[str]:
    return ["epoch", *(f"{split}_{name}" for split in ("train", "val", "test") for name in names), "lr", "momentum",
            "epoch_seconds", "eval_seconds", "samples_per_second", "diverged"]


# ---------------------------------------------------------------- the loop's parts
def test_lm_training_carries_the_state_across_windows():
    """lr 0, no dropout: the windows' summed losses equal one pass of the LSTM over the whole streams (the
    carried, detached state changes no forward value), computed here in one call."""
    problem = problems.get("ptb-lstm")
    torch.manual_seed(0)
    model = problem.build_model(8, vocab_size=20, dropout=0.0)
    tokens = torch.randint(0, 20, (203,))
    streams = tokens[:200].view(4, 50).t()  # batchify: 4 streams of 50 tokens, T×B
    with torch.no_grad():
        logits, _ = model(streams[:-1])
    whole = F.cross_entropy(logits.reshape(-1, 20), streams[1:].reshape(-1), reduction="sum")
    data_ = device_data.TokenData(tokens.numpy(), CPU)
    assert data_.steps(4, 10) == 5  # 49 targets per stream in windows of 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    sums = list(train.train_epoch(problem, model, optimizer, [], data_, device_data.tokens_as_is, 4, None,
                                  contextlib.nullcontext, bptt=10))
    assert len(sums) == 5 and sums[-1]["count"].item() == 49 * 4
    torch.testing.assert_close(sums[-1]["loss"], whole)
    result = train.evaluate(problem, model, data_, device_data.tokens_as_is, 4, contextlib.nullcontext, bptt=10)
    assert result["loss"] == pytest.approx(whole.item() / 196, rel=1e-6)
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))


def test_lm_training_clips_the_gradient_norm_at_5():
    problem = problems.get("ptb-lstm")
    assert problem.grad_clip == 5.0
    torch.manual_seed(0)
    model = problem.build_model(8, vocab_size=20, dropout=0.0)
    with torch.no_grad():
        model.decoder.weight.mul_(1000)  # huge gradients
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for _ in train.train_epoch(problem, model, optimizer, [], device_data.TokenData(np.random.randint(0, 20, 41), CPU),
                               device_data.tokens_as_is, 2, None, contextlib.nullcontext, bptt=20):
        pass
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert norm.item() == pytest.approx(5.0, rel=1e-4)


def test_digits_vae_learns_over_two_epochs(digits_mnist):
    """The loop by hand on the VAE: an untrained decoder predicts p ≈ ½ for 784 pixels (about 784 log 2
    nats); two epochs of Adam lower the negative ELBO on the test images."""
    problem = problems.get("digits-vae")
    spec = spec_for("digits-vae", digits_mnist, 32, train_subset=512, test_subset=None)
    dataset = device_data.load_data(spec, problem, CPU)
    assert dataset.normalisation == ((0.0,), (255.0,)) and dataset.sizes["pixels"] == 784
    training = train.build_training(spec, CPU, dataset, total_steps=16)
    evaluate = lambda: train.evaluate(problem, training.model, dataset.test, training.normalize, 256,  # noqa: E731
                                      training.autocast)
    before = evaluate()
    assert before["recon"] == pytest.approx(784 * math.log(2), rel=0.1)
    history = []
    for _ in range(2):
        for sums in train.train_epoch(problem, training.model, training.optimizer, [], dataset.train,
                                      training.normalize, 64, training.gen, training.autocast):
            pass
        history.append((problem.task.metrics(sums), evaluate()))
    assert history[1][1]["neg_elbo"] < history[0][1]["neg_elbo"] < before["neg_elbo"]
    assert history[1][0]["neg_elbo"] < history[0][0]["neg_elbo"]
    assert history[1][1]["neg_elbo"] == pytest.approx(history[1][1]["recon"] + history[1][1]["kl"])


# ---------------------------------------------------------------- whole runs, one per task kind
def test_a_vgg16_run_standardises_with_its_training_images_statistics(cifar100_npz, tmp_path):
    spec = spec_for("cifar100-vgg16", cifar100_npz, 8, epochs=1, channels_last="on")
    metrics = train.run(spec, tmp_path, threads=1)
    assert list(metrics.columns) == expected_columns("loss", "acc")
    row = metrics.iloc[0]
    assert 0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1 and math.isnan(row["val_loss"])
    assert 0.5 * math.log(100) < row["test_loss"] < 3 * math.log(100)  # about uniform over 100 classes at start
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["problem"] == "cifar100-vgg16" and info["primary_metric"] == "test_acc" and info["channels_last"]
    x = canonical.load_canonical(cifar100_npz)["x_train"][:128].astype(np.float64)
    mean, std = info["input_mean_std"]
    np.testing.assert_allclose(mean, [x[..., c].mean() for c in range(3)], rtol=1e-12)
    np.testing.assert_allclose(std, [x[..., c].std() for c in range(3)], rtol=1e-12)
    # 13 conv3×3 with bias and BN (channels 8, 8, 16, 16, 32 ×3, 64 ×6): 231,624; Linear(64 → 100): 6,500
    assert info["parameters"] == 238_124


def test_a_capsnet_run_records_the_margin_loss_and_accuracy(digits_mnist, tmp_path):
    spec = spec_for("digits-capsnet", digits_mnist, 8, epochs=1, train_subset=64, test_subset=32)
    metrics = train.run(spec, tmp_path, threads=1)
    assert list(metrics.columns) == expected_columns("loss", "acc")
    row = metrics.iloc[0]
    # Margin loss ≤ 0.9² + 0.5·9·0.9² per example, plus 0.0005 × at most 784 squared errors of at most 1.
    assert 0 < row["train_loss"] < 0.81 + 0.5 * 9 * 0.81 + 0.0005 * 784
    assert 0 <= row["test_acc"] <= 1 and not row["diverged"]
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["input_mean_std"] == [[0.0], [255.0]] and info["primary_metric"] == "test_acc"


def test_a_vae_run_records_neg_elbo_recon_and_kl(digits_mnist, tmp_path):
    spec = spec_for("digits-vae", digits_mnist, 16, epochs=2, channels_last="on")
    metrics = train.run(spec, tmp_path, threads=1)
    assert list(metrics.columns) == expected_columns("neg_elbo", "recon", "kl")
    for split in ("train", "test"):
        np.testing.assert_allclose(metrics[f"{split}_neg_elbo"], metrics[f"{split}_recon"] + metrics[f"{split}_kl"],
                                   rtol=1e-6)
        assert (metrics[f"{split}_kl"] >= 0).all()
        assert (metrics[f"{split}_recon"] < 1.1 * 784 * math.log(2)).all()  # at most an untrained decoder's
    assert metrics["train_neg_elbo"].iloc[1] < metrics["train_neg_elbo"].iloc[0]
    assert metrics[["val_neg_elbo", "val_recon", "val_kl"]].isna().all().all()
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["primary_metric"] == "test_neg_elbo" and info["kind"] == "vae"
    assert info["channels_last"] is False and info["channels_last_reason"] == "vae is not a convolutional network"


def test_an_lstm_run_records_loss_and_perplexity_on_ptbs_own_validation_stream(ptb_npz, tmp_path):
    arrays = canonical.load_canonical(ptb_npz)
    spec = spec_for("ptb-lstm", ptb_npz, 16, epochs=2, batch_size=4, eval_batch_size=4, bptt=20,
                    train_subset=None, test_subset=None, validation="valid", optimizer={"class": "Adam",
                                                                                       "kwargs": {"lr": 1e-2}})
    metrics = train.run(spec, tmp_path, threads=1)
    assert list(metrics.columns) == expected_columns("loss", "perplexity")
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(metrics[f"{split}_perplexity"], np.exp(metrics[f"{split}_loss"]), rtol=1e-12)
    vocab = len(arrays["vocab"])
    assert (metrics["test_perplexity"] < vocab).all()  # better than guessing uniformly (32 words + <eos>)
    assert metrics["val_loss"].iloc[1] < metrics["val_loss"].iloc[0]
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["primary_metric"] == "test_perplexity" and info["input_mean_std"] is None
    assert info["train_images"] == len(arrays["tokens_train"])  # tokens
    assert info["steps_per_epoch"] == math.ceil((len(arrays["tokens_train"]) // 4 - 1) / 20)


def test_a_killed_vae_run_resumes_in_a_new_process_bit_identically(digits_mnist, tmp_path, monkeypatch):
    """The VAE draws its ε from the global torch generator: the checkpoint's RNG states make the resumed run
    (a new process) equal the uninterrupted one, metrics and weights, bit for bit."""
    spec = spec_for("digits-vae", digits_mnist, 16, epochs=3, train_subset=256)
    run_interrupted_after(spec, tmp_path / "killed", 1, monkeypatch)
    assert not (tmp_path / "killed" / "metrics.csv").exists()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    import subprocess

    resumed = subprocess.run([PYTHON, str(ROOT / "scripts" / "train.py"), "--spec", str(tmp_path / "spec.json"),
                              "--out", str(tmp_path / "killed"), "--threads", "1"], env=run_env(),
                             capture_output=True, text=True, check=True)
    assert "resuming from" in resumed.stderr and "test_neg_elbo" in resumed.stdout
    straight = train.run(spec, tmp_path / "straight", threads=1).drop(columns=TIMING)
    assert_identical_runs(tmp_path / "killed", tmp_path / "straight", TIMING)
    other = train.run({**spec, "seed": 1}, tmp_path / "other", threads=1)  # the comparison above can fail
    assert not other["train_neg_elbo"].equals(straight["train_neg_elbo"])


def test_a_killed_lstm_run_resumes_bit_identically(ptb_npz, tmp_path, monkeypatch):
    """Dropout 0.5 draws from the global generator; the state restarts each epoch."""
    spec = spec_for("ptb-lstm", ptb_npz, 8, epochs=2, batch_size=4, eval_batch_size=4, bptt=20,
                    train_subset=2000, test_subset=None, optimizer={"class": "SGD", "kwargs": {"lr": 1.0}})
    run_interrupted_after(spec, tmp_path / "killed", 1, monkeypatch)
    resumed = train.run(spec, tmp_path / "killed", threads=1).drop(columns=TIMING)
    straight = train.run(spec, tmp_path / "straight", threads=1).drop(columns=TIMING)
    assert json.loads((tmp_path / "killed" / "run.json").read_text())["resumed_after_epoch"] == 1
    pd.testing.assert_frame_equal(resumed, straight, check_exact=True)


def test_lbfgs_trains_a_language_model_through_the_closure(ptb_npz, tmp_path):
    spec = spec_for("ptb-lstm", ptb_npz, 8, epochs=1, batch_size=4, eval_batch_size=4, bptt=20,
                    train_subset=1000, test_subset=None, optimizer={"class": "LBFGS", "kwargs": {"lr": 0.1,
                                                                                               "max_iter": 2}})
    row = train.run(spec, tmp_path, threads=1).iloc[0]
    assert not row["diverged"] and row["train_perplexity"] == pytest.approx(math.exp(row["train_loss"]))


# ---------------------------------------------------------------- errors
def test_an_unknown_problem_is_refused_naming_the_known_ones(tiny_spec, tmp_path):
    with pytest.raises(ValueError, match=r"spec\['problem'\]: unknown problem 'cifar10-resnet'; known: "
                                         r"cifar10-resnet18, cifar100-vgg16, "):
        train.run({**tiny_spec, "problem": "cifar10-resnet"}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_model_or_data_not_of_the_problem_is_refused(tiny_spec, ptb_npz, digits_mnist, tmp_path):
    with pytest.raises(ValueError, match=r"spec\['model'\] = 'resnet18_cifar': problem digits-vae trains 'vae'"):
        train.run({**tiny_spec, "problem": "digits-vae", "data": digits_mnist}, tmp_path / "a")
    with pytest.raises(ValueError, match=r"spec\['model'\] = 'vae': problem cifar10-resnet18 trains one of "
                                         r"resnet18_article, resnet18_cifar"):
        train.run({**tiny_spec, "model": "vae"}, tmp_path / "b")
    with pytest.raises(ValueError, match=r"has no \['tokens_train', 'tokens_valid', 'tokens_test', 'vocab'\]: not a "
                                         r"canonical file of problem ptb-lstm's data set 'ptb'"):
        train.run(spec_for("ptb-lstm", digits_mnist, 8), tmp_path / "c")
    with pytest.raises(ValueError, match=r"spec\['validation'\] = 'split.json': a token data set \(ptb\)"):
        train.run(spec_for("ptb-lstm", ptb_npz, 8, validation="split.json"), tmp_path / "d")
