"""Demon's pieces: which class `demon: true` runs, the errors for entries it cannot run, and exact resume."""

import io

import pytest
import torch

from optimbench.demon import DemonAdam, DemonAdamEMA, DemonSchedule, demon_beta
from optimbench.optim import build_optimizer, schedules

ADAM_DEMON = {"class": "Adam", "kwargs": {"lr": 1e-2, "betas": [0.9, 0.999]}, "demon": True}


def test_demon_true_on_adam_builds_algorithm_2_and_false_builds_torchs_adam():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert type(build_optimizer(ADAM_DEMON, params)) is DemonAdam
    assert type(build_optimizer({**ADAM_DEMON, "demon": False}, params)) is torch.optim.Adam
    assert type(build_optimizer({"class": "DemonAdamEMA", "demon": True}, params)) is DemonAdamEMA
    assert type(build_optimizer({"class": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9}, "demon": True},
                                params)) is torch.optim.SGD


@pytest.mark.parametrize("entry, message", [
    ({"class": "AdamW", "demon": True}, "demon: true on AdamW: the Demon paper's Adam"),
    ({"class": "QHAdam", "demon": True}, "demon: true on QHAdam"),
    ({"class": "YellowFin", "demon": True}, "YellowFin tunes its momentum itself"),
    ({"class": "Adagrad", "demon": True}, "Demon needs an optimizer with `momentum`"),
    ({"class": "Adam", "kwargs": {"amsgrad": True}, "demon": True}, "has no AMSGrad"),
])
def test_entries_demon_cannot_run_say_why(entry, message):
    with pytest.raises(ValueError, match=message):
        params = [torch.nn.Parameter(torch.zeros(2))]
        schedules(entry, build_optimizer(entry, params), None, 10)


def test_demon_adam_without_the_schedule_keeps_beta_init():
    """DemonAdam alone: m_t = g_t + β_init·m_{t-1}; with g constant m_t = g·(1-β^t)/(1-β), so the bias
    correction 1/(1-β^t) gives m̂_t = g/(1-β): steps of lr/(1-β) once v̂ = g²."""
    theta = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = DemonAdam([theta], lr=0.01, betas=(0.9, 0.999), eps=0.0)
    for _ in range(3):
        before = theta.item()
        theta.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        assert before - theta.item() == pytest.approx(0.01 / (1 - 0.9), rel=1e-12)


def test_demon_adam_ema_decays_beta1_only():
    theta = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer({"class": "DemonAdamEMA", "kwargs": {"betas": [0.9, 0.999]}}, [theta])
    demon = DemonSchedule(opt, 10)
    for _ in range(5):
        theta.grad = torch.ones(2)
        opt.step()
        demon.step()
    assert opt.param_groups[0]["betas"] == (pytest.approx(demon_beta(0.9, 5, 10)), 0.999)


def steps(theta, opt, steppers, grads):
    for g in grads:
        theta.grad = g.clone()
        opt.step()
        for stepper in steppers:
            stepper.step()
    return theta.detach().clone()


@pytest.mark.parametrize("entry", [ADAM_DEMON, {"class": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9}, "demon": True}])
def test_resume_mid_run_is_exact(entry):
    """10 of 20 steps, optimizer and schedules through torch.save into fresh objects, 10 more = 20 straight."""
    torch.manual_seed(0)
    grads = [torch.randn(3, dtype=torch.float64) for _ in range(20)]
    theta = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = build_optimizer(entry, [theta])
    straight = steps(theta, opt, schedules(entry, opt, "cosine", 20), grads)

    theta = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = build_optimizer(entry, [theta])
    steppers = schedules(entry, opt, "cosine", 20)
    steps(theta, opt, steppers, grads[:10])
    buffer = io.BytesIO()
    torch.save({"theta": theta.detach(), "opt": opt.state_dict(), "steppers": [s.state_dict() for s in steppers]},
               buffer)
    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=False)
    theta = torch.nn.Parameter(ckpt["theta"].clone())
    opt = build_optimizer(entry, [theta])
    steppers = schedules(entry, opt, "cosine", 20)
    opt.load_state_dict(ckpt["opt"])
    for stepper, state in zip(steppers, ckpt["steppers"]):
        stepper.load_state_dict(state)
    assert torch.equal(steps(theta, opt, steppers, grads[10:]), straight)
