"""YellowFin against the authors' implementation: float64 trajectories of JianGoForIt/YellowFin_Pytorch
(tuner_utils/yellowfin.py at b87aed1, its defaults) in tests/data/, and its pieces by hand."""

import io
import json
import math
from pathlib import Path

import pytest
import torch

from optimbench.yellowfin import EPS, YellowFin, cubic_root, single_step

DATA = Path(__file__).parent / "data"


def problem(name: str):
    """(reference, objective, initial point) for tests/data/yellowfin_<name>.json."""
    ref = json.loads((DATA / f"yellowfin_{name}.json").read_text())
    if ref["kind"] == "quadratic":  # 0.5·xᵀAx - bᵀx
        A, b = torch.tensor(ref["A"], dtype=torch.float64), torch.tensor(ref["b"], dtype=torch.float64)
        objective = lambda x: 0.5 * x @ A @ x - b @ x  # noqa: E731
    else:  # Rosenbrock (1 - x0)² + 100 (x1 - x0²)²
        objective = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # noqa: E731
    return ref, objective, torch.tensor(ref["initial_params"], dtype=torch.float64)


def descend(objective, x: torch.nn.Parameter, opt: YellowFin, steps: int) -> list[dict]:
    """`steps` steps; per step the loss before it, the applied lr and momentum, and the point after."""
    record = []
    for _ in range(steps):
        opt.zero_grad()
        loss = objective(x)
        loss.backward()
        opt.step()
        group = opt.param_groups[0]
        record.append({"loss": loss.item(), "lr": group["lr"], "mu": group["momentum"], "x": x.detach().clone()})
    return record


@pytest.mark.parametrize("name", ["quadratic10", "rosenbrock2"])
def test_yellowfin_reproduces_the_authors_trajectory(name):
    """Defaults = the authors' defaults (lr 1e-4, μ 0, β 0.999, window 20, log smoothing, adaptive
    clipping): every one of the 300 steps within 1e-6 of the reference (measured: ≤ 7e-8)."""
    ref, objective, start = problem(name)
    x = torch.nn.Parameter(start.clone())
    got = descend(objective, x, YellowFin([x]), len(ref["trajectory"]))
    for step, mine in zip(ref["trajectory"], got):
        torch.testing.assert_close(mine["x"], torch.tensor(step["params_after_step"], dtype=torch.float64),
                                   rtol=0, atol=1e-6, msg=f"parameters after step {step['step']}")
        assert mine["loss"] == pytest.approx(step["loss_before_step"], rel=1e-6, abs=1e-6)
        assert mine["lr"] == pytest.approx(step["applied_lr"], rel=1e-5)
        assert mine["mu"] == pytest.approx(step["applied_momentum"], rel=1e-5, abs=1e-6)


def test_yellowfin_applies_the_tuned_values_with_a_slow_start():
    """Step 1 applies the constructor's lr and μ; later the applied lr is min(1, t/(10·window))·α*
    of SingleStep on the tuner's own estimates, the applied μ is μ* (no moving average of either)."""
    ref, objective, start = problem("quadratic10")
    x = torch.nn.Parameter(start.clone())
    opt = YellowFin([x], lr=0.02, momentum=0.3, window=5)
    first = descend(objective, x, opt, 1)[0]
    assert (first["lr"], first["mu"]) == (0.02, 0.3)
    for t in range(2, 80):
        step = descend(objective, x, opt, 1)[0]
        tuner = opt.tuner
        lr_star, mu_star = single_step(tuner["h_min"], tuner["h_max"], tuner["C"], tuner["D"])
        assert step["mu"] == pytest.approx(mu_star, rel=1e-12)
        assert step["lr"] == pytest.approx(min(1.0, t / 50) * lr_star, rel=1e-12)


def test_yellowfin_estimators_by_hand():
    """Two steps with known gradients: h_min/h_max (log space), C and D from Algorithms 2–4 written out."""
    beta = 0.9
    x = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = YellowFin([x], beta=beta, window=20)
    grads = [torch.tensor([3.0, 4.0], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)]
    for g in grads:
        x.grad = g.clone()
        opt.step()
    h = [25.0, 1.0]
    debias = 1 - beta**2
    log_min = (beta * (1 - beta) * math.log(25 + EPS) + (1 - beta) * math.log(1 + EPS)) / debias
    log_max = (beta * (1 - beta) * math.log(25 + EPS) + (1 - beta) * math.log(25 + EPS)) / debias
    assert opt.tuner["h_min"] == pytest.approx(math.exp(log_min), rel=1e-6)  # float32, as the authors'
    assert opt.tuner["h_max"] == pytest.approx(math.exp(log_max), rel=1e-6)
    h_avg = beta * (1 - beta) * h[0] + (1 - beta) * h[1]
    g_avg = beta * (1 - beta) * grads[0] + (1 - beta) * grads[1]
    C = h_avg / debias - (g_avg @ g_avg).item() / debias**2
    assert opt.tuner["C"] == pytest.approx(C, rel=1e-6)
    norm_avg = [(1 - beta) * 5.0, beta * (1 - beta) * 5.0 + (1 - beta) * 1.0]
    h_avgs = [(1 - beta) * 25.0, h_avg]
    dist = beta * (1 - beta) * norm_avg[0] / (h_avgs[0] + EPS) + (1 - beta) * norm_avg[1] / (h_avgs[1] + EPS)
    assert opt.tuner["D"] == pytest.approx(dist / debias, rel=1e-12)


def test_cubic_root_is_the_minimiser_of_the_single_step_objective():
    for D, C, h in [(1.0, 0.5, 2.0), (0.1, 3.0, 1.0), (5.0, 0.01, 0.3)]:
        x = cubic_root(D, C, h)
        objective = lambda z: z**2 * D**2 + (1 - z) ** 4 * C / h**2  # noqa: E731
        grid = [i / 10000 for i in range(10001)]
        assert objective(x) <= min(objective(z) for z in grid) + 1e-6
        assert 0 <= x <= 1


def test_single_step_respects_the_robust_momentum_bound():
    """With a wide curvature range the momentum is at least ((√κ-1)/(√κ+1))², κ = h_max/h_min."""
    lr, mu = single_step(h_min=1.0, h_max=100.0, C=1e-6, D=10.0)
    assert mu == pytest.approx(((10 - 1) / (10 + 1)) ** 2, rel=1e-5)
    assert lr == pytest.approx((1 - math.sqrt(mu)) ** 2 / (1.0 + EPS), rel=1e-12)


def warmed_up(adapt_clip: bool = True, steps: int = 30):
    """YellowFin after `steps` steps of f(x) = x²/2 from x = 1."""
    x = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = YellowFin([x], adapt_clip=adapt_clip)
    descend(lambda z: 0.5 * (z * z).sum(), x, opt, steps)
    return x, opt


def test_adaptive_clipping_tames_an_exploding_gradient():
    """A gradient of 1e6 after 30 quiet steps: clipped to √(100·h_max) for the statistics, then to
    √h_max for the step (h_max of the step before), and lr·‖g‖ capped at 100."""
    x, opt = warmed_up()
    h_max, buf = opt.tuner["h_max"], opt.state[x]["momentum_buffer"].clone()
    before = x.detach().clone()
    x.grad = torch.tensor([1e6], dtype=torch.float64)
    opt.step()
    assert opt.tuner["h_window"][-1] == pytest.approx(100 * h_max, rel=1e-5)  # ‖g‖² seen by the statistics
    g_step = math.sqrt(h_max) + EPS
    assert x.grad.item() == pytest.approx(g_step, rel=1e-6)  # what SGD stepped with
    h_seen = opt.tuner["h_window"][-1]
    lr = opt.tuner["lr"]
    expected_lr = lr if lr * math.sqrt(h_seen) < 100 else 100 / math.sqrt(h_seen + EPS)
    assert opt.param_groups[0]["lr"] == pytest.approx(expected_lr, rel=1e-6)
    moved = before - expected_lr * (opt.tuner["mu"] * buf + g_step)
    torch.testing.assert_close(x.detach(), moved, rtol=1e-6, atol=0)


def test_catastrophic_move_cap():
    """lr·‖g‖ ≥ 100 → lr = 100/‖g‖ (adaptive clipping on); off → the tuned lr as it is."""
    for adapt_clip in (True, False):
        x = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = YellowFin([x], lr=1.0, adapt_clip=adapt_clip)
        x.grad = torch.tensor([400.0], dtype=torch.float64)
        opt.step()  # step 1: the constructor's lr, 1.0·400 ≥ 100
        assert opt.param_groups[0]["lr"] == pytest.approx(100 / 400 if adapt_clip else 1.0, rel=1e-9)


def test_without_adaptive_clipping_the_gradient_is_untouched():
    x, opt = warmed_up(adapt_clip=False)
    x.grad = torch.tensor([1e6], dtype=torch.float64)
    opt.step()
    assert x.grad.item() == 1e6 and opt.tuner["h_window"][-1] == pytest.approx(1e12, rel=1e-7)


def test_resume_from_a_state_dict_mid_run_is_exact():
    """150 steps, state_dict through torch.save, a fresh optimizer, 150 more steps = 300 straight."""
    ref, objective, start = problem("rosenbrock2")
    x = torch.nn.Parameter(start.clone())
    straight = descend(objective, x, YellowFin([x]), 300)

    x = torch.nn.Parameter(start.clone())
    opt = YellowFin([x])
    first = descend(objective, x, opt, 150)
    buffer = io.BytesIO()
    tuner = opt.state_dict()["yellowfin"]
    torch.save({"x": x.detach().clone(), "opt": opt.state_dict()}, buffer)
    descend(objective, x, opt, 5)  # the old optimizer moves on: the checkpoint must not share its state
    assert tuner["t"] == 150 and len(tuner["h_window"]) == 20
    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=False)
    y = torch.nn.Parameter(ckpt["x"])
    resumed = YellowFin([y], lr=0.5, momentum=0.5)  # other constructor values: the checkpoint wins
    resumed.load_state_dict(ckpt["opt"])
    second = descend(objective, y, resumed, 150)
    for a, b in zip(straight, first + second):
        assert torch.equal(a["x"], b["x"]) and (a["lr"], a["mu"]) == (b["lr"], b["mu"])


def test_resume_without_the_tuner_state_would_differ():
    """The tuner's state matters: a fresh YellowFin continuing from the same point moves elsewhere."""
    ref, objective, start = problem("rosenbrock2")
    x = torch.nn.Parameter(start.clone())
    descend(objective, x, YellowFin([x]), 150)
    y = torch.nn.Parameter(x.detach().clone())
    restarted = descend(objective, y, YellowFin([y]), 5)
    continued = problem("rosenbrock2")[0]["trajectory"][154]["params_after_step"]
    assert (restarted[-1]["x"] - torch.tensor(continued, dtype=torch.float64)).abs().max() > 1e-4


def test_an_lr_schedule_scales_the_tuned_lr():
    """schedules() gives YellowFin an LrScale: the applied lr is the tuned lr times the schedule's
    multiplier, 1 - k/T at the k-th step (k = 0, 1, ...) for `linear` (the authors' lr_factor)."""
    from optimbench.optim import LrScale, schedules

    ref, objective, start = problem("quadratic10")
    x = torch.nn.Parameter(start.clone())
    entry = {"class": "YellowFin"}
    opt = YellowFin([x])
    steppers = schedules(entry, opt, "linear", 40)
    assert isinstance(steppers[0], LrScale)
    for k in range(40):
        step = descend(objective, x, opt, 1)[0]
        assert step["lr"] == pytest.approx(opt.tuner["lr"] * (1 - k / 40), rel=1e-12)
        for stepper in steppers:
            stepper.step()
    assert opt.param_groups[0]["lr_scale"] == 0.0
