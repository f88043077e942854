"""The Demon paper's optimizers: each update rule against its formula, step by step."""

import math

import pytest
import torch

from optimbench.demon import DemonSchedule, demon_beta
from optimbench.optim import build_optimizer
from optimbench.yellowfin import YellowFin, cubic_root, single_step

GRADS = [torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5]), torch.tensor([-1.0, 3.0]), torch.tensor([2.0, 0.0])]


def run(optimizer_entry, overrides=None, grads=GRADS, schedule=None):
    """Apply the optimizer to a 2-vector with the given gradients; return the iterates."""
    theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = build_optimizer(optimizer_entry, [theta], overrides)
    demon = DemonSchedule(opt, schedule) if schedule else None
    iterates = []
    for g in grads:
        theta.grad = g.double().clone()
        opt.step()
        if demon:
            demon.step()
        iterates.append(theta.detach().clone())
    return iterates


def test_qhm_against_its_formula():
    """QHM: g_buf ← β·g_buf + (1-β)·∇;  θ ← θ - α·((1-ν)·∇ + ν·g_buf)."""
    alpha, beta, nu = 0.1, 0.9, 0.7
    iterates = run({"class": "QHM"}, {"lr": alpha, "momentum": beta, "nu": nu})
    theta, buf = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for g, got in zip(GRADS, iterates):
        g = g.double()
        buf = beta * buf + (1 - beta) * g
        theta = theta - alpha * ((1 - nu) * g + nu * buf)
        torch.testing.assert_close(got, theta)


def test_qhadam_against_its_formula():
    """QHAdam: m, v as Adam with bias correction; θ ← θ - α·((1-ν₁)g + ν₁m̂) / (sqrt((1-ν₂)g² + ν₂v̂) + ε)."""
    alpha, (b1, b2), (nu1, nu2), eps = 0.01, (0.9, 0.999), (0.7, 1.0), 1e-8
    iterates = run({"class": "QHAdam"}, {"lr": alpha, "betas": (b1, b2), "nus": (nu1, nu2), "eps": eps})
    theta = torch.tensor([1.0, 1.0], dtype=torch.float64)
    m, v = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for t, (g, got) in enumerate(zip(GRADS, iterates), start=1):
        g = g.double()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - alpha * ((1 - nu1) * g + nu1 * m_hat) / (((1 - nu2) * g * g + nu2 * v_hat).sqrt() + eps)
        torch.testing.assert_close(got, theta)


def test_aggmo_averages_several_velocities():
    """AggMo: v⁽ⁱ⁾ ← β⁽ⁱ⁾·v⁽ⁱ⁾ - ∇;  θ ← θ + (α/K)·Σᵢ v⁽ⁱ⁾."""
    alpha, betas = 0.1, (0.0, 0.9, 0.99)
    iterates = run({"class": "AggMo"}, {"lr": alpha, "betas": betas})
    theta, velocities = torch.tensor([1.0, 1.0], dtype=torch.float64), [torch.zeros(2, dtype=torch.float64)] * 3
    for g, got in zip(GRADS, iterates):
        velocities = [b * vel - g.double() for b, vel in zip(betas, velocities)]
        theta = theta + alpha / 3 * sum(velocities)
        torch.testing.assert_close(got, theta)


def test_amsgrad_keeps_the_maximum_second_moment():
    """AMSGrad (Adam, amsgrad=True): the denominator uses max over steps of v̂ (here v_max), never a smaller one."""
    big_then_small = [torch.tensor([10.0, 10.0]), torch.tensor([0.1, 0.1]), torch.tensor([0.1, 0.1])]
    theta = torch.nn.Parameter(torch.tensor([0.0, 0.0], dtype=torch.float64))
    opt = build_optimizer({"class": "Adam", "kwargs": {"amsgrad": True}}, [theta], {"lr": 0.1, "betas": (0.9, 0.5)})
    maxima = []
    for g in big_then_small:
        theta.grad = g.double()
        opt.step()
        maxima.append(opt.state[theta]["max_exp_avg_sq"].clone())
    v = [0.0]
    for g in (10.0, 0.1, 0.1):
        v.append(0.5 * v[-1] + 0.5 * g * g)
    assert [m[0].item() for m in maxima] == pytest.approx([50.0, 50.0, 50.0])  # max(50, 25.005, 12.5075)
    assert v[3] == pytest.approx(12.5075)  # the current second moment is four times smaller


def test_demon_beta_at_start_middle_and_end():
    assert demon_beta(0.9, 0, 100) == pytest.approx(0.9)
    assert demon_beta(0.9, 50, 100) == pytest.approx(0.9 * 0.5 / (0.1 + 0.45))  # = β/(2-β)
    assert demon_beta(0.9, 50, 100) == pytest.approx(0.9 / 1.1)
    assert demon_beta(0.9, 100, 100) == 0.0


def test_demon_sgdm_steps_with_decaying_momentum():
    """SGD's buf ← β_t·buf + g; θ ← θ - α·buf, with β_t from Demon at each step t."""
    alpha, beta0, T = 0.1, 0.9, 4
    iterates = run({"class": "SGD", "kwargs": {"momentum": beta0}}, {"lr": alpha}, schedule=T)
    theta, buf = torch.tensor([1.0, 1.0], dtype=torch.float64), None
    for t, (g, got) in enumerate(zip(GRADS, iterates)):
        g = g.double()
        buf = g.clone() if buf is None else demon_beta(beta0, t, T) * buf + g
        theta = theta - alpha * buf
        torch.testing.assert_close(got, theta)


def test_demon_adam_decays_beta1_only():
    theta = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer({"class": "Adam", "kwargs": {"betas": [0.9, 0.999]}}, [theta])
    demon = DemonSchedule(opt, 10)
    for _ in range(5):
        theta.grad = torch.ones(2)
        opt.step()
        demon.step()
    assert opt.param_groups[0]["betas"] == (pytest.approx(demon_beta(0.9, 5, 10)), 0.999)
    restored = DemonSchedule(build_optimizer({"class": "Adam"}, [torch.nn.Parameter(torch.zeros(2))]), 10)
    restored.load_state_dict(demon.state_dict())
    assert restored.t == 5 and restored.optimizer.param_groups[0]["betas"][0] == pytest.approx(demon_beta(0.9, 5, 10))


def test_demon_needs_a_momentum_optimizer():
    with pytest.raises(ValueError, match="Demon needs an optimizer with `momentum`"):
        DemonSchedule(torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))]), 10)


def test_cubic_root_is_the_minimiser_of_the_single_step_objective():
    for D, C, h in [(1.0, 0.5, 2.0), (0.1, 3.0, 1.0), (5.0, 0.01, 0.3)]:
        x = cubic_root(D, C, h)
        objective = lambda z: z**2 * D**2 + (1 - z) ** 4 * C / h**2  # noqa: E731
        grid = [i / 10000 for i in range(10001)]
        assert objective(x) <= min(objective(z) for z in grid) + 1e-9
        assert 0 <= x <= 1


def test_single_step_respects_the_robust_momentum_bound():
    """With a wide curvature range the momentum is at least ((√κ-1)/(√κ+1))², κ = h_max/h_min."""
    lr, mu = single_step(h_min=1.0, h_max=100.0, C=1e-6, D=10.0)
    assert mu == pytest.approx(((10 - 1) / (10 + 1)) ** 2)
    assert lr == pytest.approx((1 - math.sqrt(mu)) ** 2 / 1.0)


def test_yellowfin_on_a_quadratic_tunes_to_the_papers_values():
    """On f(x) = h/2·x² with noisy gradients, the applied (α, μ) approach SingleStep's optimum for the
    tuner's estimates of curvature range, variance and distance, and the iterate reaches the minimum."""
    torch.manual_seed(0)
    h = 4.0
    x = torch.nn.Parameter(torch.tensor([3.0]))
    opt = YellowFin([x], lr=0.01, beta=0.99)
    for _ in range(3000):
        x.grad = h * x.detach() + 0.1 * torch.randn(1)
        opt.step()
    tuner = opt.tuner
    lr_star, mu_star = single_step(tuner["h_min_value"], tuner["h_max_value"], tuner["C_value"], tuner["D_value"])
    assert tuner["lr"] == pytest.approx(lr_star, rel=0.1)
    assert tuner["mu"] == pytest.approx(mu_star, abs=0.05)
    assert abs(x.item()) < 0.5  # from 3.0: converged to the noise floor near the minimum


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
    assert len(trajectory) == 51 and not summary.iloc[0].diverged
    assert (trajectory[["x", "y"]].iloc[-1] != [-2.0, -2.0]).all()  # the point moved


@pytest.mark.parametrize("name", DEMON_PAPER)
def test_each_optimizer_trains_a_tiny_cifar_model(registry, name, tiny_spec, tmp_path):
    from optimbench import train

    spec = {**tiny_spec, "epochs": 2, "train_subset": 64, "test_subset": 32, "optimizer_name": name,
            "optimizer": registry[name]}
    metrics = train.run(spec, tmp_path, threads=1)
    assert len(metrics) == 2 and metrics["train_loss"].notna().all() and not metrics["diverged"].any()

