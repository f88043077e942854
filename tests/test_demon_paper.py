"""The Demon paper's optimizers as config.yaml's registry defines them: each entry, built the way the
trainer builds it (build_optimizer + schedules), against its paper's update rule written out by hand."""

import json
import math

import pytest
import torch

from optimbench import config
from optimbench.optim import build_optimizer, schedules

from helpers import ROOT

GRADS = [torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5]), torch.tensor([-1.0, 3.0]), torch.tensor([2.0, 0.0]),
         torch.tensor([0.1, -0.1]), torch.tensor([-0.3, 0.2])]


@pytest.fixture(scope="module")
def entries() -> dict:
    """The `optimizers` table of config.yaml, as optimbench.config.load reads it."""
    return config.load([ROOT / "config.yaml"])["optimizers"]


def run(entry: dict, overrides: dict | None = None, grads=GRADS, total_steps: int | None = None) -> list:
    """Step a registry entry over a float64 2-vector from (1, 1) with the given gradients, stepping its
    schedules (lr, Demon) after each step as the trainer does; return the iterates."""
    theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = build_optimizer(entry, [theta], overrides)
    steppers = schedules(entry, opt, None, total_steps or len(grads))
    iterates = []
    for g in grads:
        theta.grad = g.double().clone()
        opt.step()
        for stepper in steppers:
            stepper.step()
        iterates.append(theta.detach().clone())
    return iterates


def demon(beta_init: float, t: int, T: int) -> float:
    """Chen et al.'s schedule, written out: β_t/(1-β_t) = (1 - t/T)·β_init/(1-β_init)."""
    ratio = (1 - t / T) * beta_init / (1 - beta_init)
    return ratio / (1 + ratio)


def test_qhm_entry_against_its_formula(entries):
    """QHM (Ma & Yarats, recommended ν 0.7, β 0.999): g_buf ← β·g_buf + (1-β)·∇; θ ← θ - α·((1-ν)·∇ + ν·g_buf)."""
    entry = entries["QHM"]
    assert entry["kwargs"] == {"lr": 0.01, "momentum": 0.999, "nu": 0.7}
    alpha, beta, nu = 0.01, 0.999, 0.7
    theta, buf = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for g, got in zip(GRADS, run(entry)):
        g = g.double()
        buf = beta * buf + (1 - beta) * g
        theta = theta - alpha * ((1 - nu) * g + nu * buf)
        torch.testing.assert_close(got, theta)


def test_qhadam_entry_against_its_formula(entries):
    """QHAdam (recommended betas (0.995, 0.999), nus (0.7, 1.0)): m, v as Adam with bias correction;
    θ ← θ - α·((1-ν₁)g + ν₁m̂) / (sqrt((1-ν₂)g² + ν₂v̂) + ε)."""
    entry = entries["QHAdam"]
    assert entry["kwargs"] == {"lr": 1e-3, "betas": [0.995, 0.999], "nus": [0.7, 1.0]}
    alpha, (b1, b2), (nu1, nu2), eps = 1e-3, (0.995, 0.999), (0.7, 1.0), 1e-8
    theta = torch.tensor([1.0, 1.0], dtype=torch.float64)
    m, v = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for t, (g, got) in enumerate(zip(GRADS, run(entry)), start=1):
        g = g.double()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - alpha * ((1 - nu1) * g + nu1 * m_hat) / (((1 - nu2) * g * g + nu2 * v_hat).sqrt() + eps)
        torch.testing.assert_close(got, theta, rtol=1e-7, atol=1e-9)  # pytorch-optimizer: float32 weights


def test_aggmo_entry_averages_several_velocities(entries):
    """AggMo (Lucas et al., betas (0, 0.9, 0.99)): v⁽ⁱ⁾ ← β⁽ⁱ⁾·v⁽ⁱ⁾ - ∇;  θ ← θ + (α/K)·Σᵢ v⁽ⁱ⁾."""
    entry = entries["AggMo"]
    assert entry["kwargs"] == {"lr": 0.01, "betas": [0.0, 0.9, 0.99]}
    alpha, betas = 0.01, (0.0, 0.9, 0.99)
    theta, velocities = torch.tensor([1.0, 1.0], dtype=torch.float64), [torch.zeros(2, dtype=torch.float64)] * 3
    for g, got in zip(GRADS, run(entry)):
        velocities = [b * vel - g.double() for b, vel in zip(betas, velocities)]
        theta = theta + alpha / 3 * sum(velocities)
        torch.testing.assert_close(got, theta)


def amsgrad_torch(grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8) -> list:
    """torch's AMSGrad: Adam's m, v and both bias corrections, v replaced by its running maximum."""
    theta, m, v, v_max = (torch.tensor([1.0, 1.0], dtype=torch.float64), *[torch.zeros(2, dtype=torch.float64)] * 3)
    iterates = []
    for t, g in enumerate(grads, start=1):
        g = g.double()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        v_max = torch.maximum(v_max, v)
        theta = theta - lr / (1 - b1**t) * m / ((v_max / (1 - b2**t)).sqrt() + eps)
        iterates.append(theta)
    return iterates


def amsgrad_reddi(grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8) -> list:
    """Reddi et al.'s Algorithm 2 with constant α and β₁: the same without any bias correction."""
    theta, m, v, v_hat = (torch.tensor([1.0, 1.0], dtype=torch.float64), *[torch.zeros(2, dtype=torch.float64)] * 3)
    iterates = []
    for g in grads:
        g = g.double()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        v_hat = torch.maximum(v_hat, v)
        theta = theta - lr * m / (v_hat.sqrt() + eps)
        iterates.append(theta)
    return iterates


def test_amsgrad_entry_is_torchs_variant_with_bias_correction(entries):
    """The AMSGrad entry runs torch's Adam(amsgrad=True), not Reddi et al.'s Algorithm 2 (config's note)."""
    entry = entries["AMSGrad"]
    assert entry["class"] == "Adam" and entry["kwargs"] == {"amsgrad": True}
    assert "with Adam's bias correction" in entry["paper"]
    big_then_small = [torch.tensor([10.0, 10.0])] + [torch.tensor([0.1, -0.1])] * 5
    got = run(entry, grads=big_then_small)
    for mine, expected in zip(got, amsgrad_torch(big_then_small)):
        torch.testing.assert_close(mine, expected)
    assert (got[-1] - amsgrad_reddi(big_then_small)[-1]).abs().max() > 1e-3  # the two variants differ


def test_amsgrad_keeps_the_maximum_second_moment(entries):
    """After a large then small gradients the denominator keeps the maximum, larger than the current v."""
    theta = torch.nn.Parameter(torch.tensor([0.0, 0.0], dtype=torch.float64))
    opt = build_optimizer(entries["AMSGrad"], [theta], {"lr": 0.1, "betas": (0.9, 0.5)})
    for g in (10.0, 0.1, 0.1):
        theta.grad = torch.full((2,), g, dtype=torch.float64)
        opt.step()
    state = opt.state[theta]
    assert state["max_exp_avg_sq"][0].item() == pytest.approx(50.0)  # 0.5·10², never replaced
    assert state["exp_avg_sq"][0].item() == pytest.approx(0.5 * (0.5 * 50.0 + 0.5 * 0.01) + 0.5 * 0.01)


def test_demon_beta_at_start_middle_and_end():
    from optimbench.demon import demon_beta

    assert demon_beta(0.9, 0, 100) == pytest.approx(0.9)
    assert demon_beta(0.9, 50, 100) == pytest.approx(0.9 / 1.1)  # = β/(2-β)
    assert demon_beta(0.9, 30, 100) == pytest.approx(demon(0.9, 30, 100))
    assert demon_beta(0.9, 100, 100) == 0.0


def test_demon_sgdm_entry_is_algorithm_1(entries):
    """Demon SGDM (Algorithm 1): buf ← β_t·buf + g; θ ← θ - η·buf, β_t from Demon at steps t = 0..T-1."""
    entry = entries["DemonSGDM"]
    assert entry["demon"] is True and entry["kwargs"] == {"lr": 0.01, "momentum": 0.9}
    T = len(GRADS)
    theta, buf = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for t, (g, got) in enumerate(zip(GRADS, run(entry))):
        buf = demon(0.9, t, T) * buf + g.double()
        theta = theta - 0.01 * buf
        torch.testing.assert_close(got, theta, rtol=1e-12, atol=1e-15)


def demon_adam_algorithm_2(grads, T, lr=1e-3, beta_init=0.9, beta2=0.999, eps=1e-8) -> list:
    """Chen et al.'s Algorithm 2, written out: m_t = g_t + β_t·m_{t-1}; v_t = β2·v_{t-1} + (1-β2)·g_t²;
    θ_t = θ_{t-1} - η·m̂_t/(√v̂_t + ε), m̂_t = m_t/(1-β_init^t), v̂_t = v_t/(1-β2^t)."""
    theta, m, v = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 0.0
    iterates = []
    for t, g in enumerate(grads, start=1):
        g = g.double()
        m = g + demon(beta_init, t - 1, T) * m
        v = beta2 * v + (1 - beta2) * g * g
        theta = theta - lr * (m / (1 - beta_init**t)) / ((v / (1 - beta2**t)).sqrt() + eps)
        iterates.append(theta)
    return iterates


@pytest.mark.parametrize("T", [6, 10])
def test_demon_adam_entry_is_algorithm_2(entries, T):
    """The DemonAdam entry (class Adam, demon: true) follows Algorithm 2 step by step, β_t decaying
    over the run's T steps (T = 6: down to β_5 = 0.6, T = 10: to β_5 ≈ 0.82)."""
    entry = entries["DemonAdam"]
    assert entry["class"] == "Adam" and entry["demon"] is True
    assert entry["kwargs"] == {"lr": 1e-3, "betas": [0.9, 0.999]}
    got = run(entry, total_steps=T)
    for mine, expected in zip(got, demon_adam_algorithm_2(GRADS, T)):
        torch.testing.assert_close(mine, expected, rtol=1e-12, atol=1e-15)


def test_demon_adam_ema_entry_decays_beta1_inside_torchs_adam(entries):
    """DemonAdamEMA (the earlier variant, by its own name): m_t = β_t·m + (1-β_t)·g, torch's bias
    corrections with the current β_t."""
    entry = entries["DemonAdamEMA"]
    T = len(GRADS)
    theta, m, v = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 0.0
    for t, (g, got) in enumerate(zip(GRADS, run(entry)), start=1):
        g, beta = g.double(), demon(0.9, t - 1, T)
        m, v = beta * m + (1 - beta) * g, 0.999 * v + 0.001 * g * g
        theta = theta - 1e-3 / (1 - beta**t) * m / ((v / (1 - 0.999**t)).sqrt() + 1e-8)
        torch.testing.assert_close(got, theta, rtol=1e-12, atol=1e-15)


def test_yellowfin_entry_reproduces_the_authors_trajectory(entries):
    """The registry's YellowFin runs with the authors' defaults: the Rosenbrock reference to 1e-6."""
    entry = entries["YellowFin"]
    ref = json.loads((ROOT / "tests" / "data" / "yellowfin_rosenbrock2.json").read_text())
    x = torch.nn.Parameter(torch.tensor(ref["initial_params"], dtype=torch.float64))
    opt = build_optimizer(entry, [x])
    steppers = schedules(entry, opt, None, len(ref["trajectory"]))
    for step in ref["trajectory"]:
        opt.zero_grad()
        ((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2).backward()
        opt.step()
        for stepper in steppers:
            stepper.step()
        expected = torch.tensor(step["params_after_step"], dtype=torch.float64)
        torch.testing.assert_close(x.detach(), expected, rtol=0, atol=1e-6)


def test_every_demon_paper_entry_says_its_paper(entries):
    for name in DEMON_PAPER:
        assert entries[name].get("paper"), f"optimizers.{name} has no paper note"
    assert math.isclose(entries["SGDM"]["kwargs"]["momentum"], 0.9) and not entries["SGDM"].get("demon")


DEMON_PAPER = ["Adam", "AMSGrad", "AdamW", "QHAdam", "YellowFin", "DemonAdam", "SGDM", "AggMo", "QHM", "DemonSGDM"]


@pytest.fixture(scope="module")
def registry():
    from optimbench import config

    from helpers import ROOT

    cfg = config.load([ROOT / "config.yaml", ROOT / "config" / "presets" / "demon-paper.yaml"])
    assert cfg["train"]["optimizers"] == DEMON_PAPER and cfg["train"]["model"] == "resnet18_cifar"
    return cfg["optimizers"]


@pytest.mark.parametrize("name", DEMON_PAPER)
def test_each_optimizer_drives_a_descent_run(registry, name):
    from optimbench import descent

    spec = {"group": "g", "function": "ackley", "method": name, "gradient": "autograd", "kind": "optimizer",
            "optimizer": registry[name], "kwargs": {}, "h": 1e-3, "tol": 0.0, "max_epochs": 50, "start": [-2.0, -2.0]}
    trajectory, summary = descent.run(spec)
    assert len(trajectory) == 51 and not summary["diverged"]
    assert trajectory[-1]["x"] != -2.0 and trajectory[-1]["y"] != -2.0  # the point moved


@pytest.mark.parametrize("name", DEMON_PAPER)
def test_each_optimizer_trains_a_tiny_cifar_model(registry, name, tiny_spec, tmp_path):
    from optimbench import train

    spec = {**tiny_spec, "epochs": 2, "train_subset": 64, "test_subset": 32, "optimizer_name": name,
            "optimizer": registry[name]}
    metrics = train.run(spec, tmp_path, threads=1)
    assert len(metrics) == 2 and metrics["train_loss"].notna().all() and not metrics["diverged"].any()

