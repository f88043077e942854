"""Gradient descent on 2-D test functions: the article's update rules and any torch optimizer (SPEC §1.1, §2.3).

A descent job runs every run of one group on one function (one process: a run takes well under a second,
a process's start-up with torch about two) and writes their trajectories and summaries as two tables
(optimbench.files.DESCENT_TRAJECTORY_COLUMNS, DESCENT_SUMMARY_COLUMNS), each row carrying its run's
identity. It imports no pandas: rows are dicts, written by optimbench.io.write_rows.

The article's loop, reconstructed exactly:
    v₀ = 0; repeat: g = ∇f(X); v = m·v + lr·g (vanilla: v = lr·g); X_new = X - v;
    epochs += 1; stop when Σ|X_new - X| < tol (the update that meets it counts as an epoch).
Here X takes the final update too, and a cap of `max_epochs` stops runs that never meet the rule.
A run that blows up stops as diverged, never as converged: the divergence rule (optimbench.metrics.diverged,
on f and on the point's largest coordinate, each against its start) is checked before the stopping rule,
because far out a finite-difference gradient vanishes (X ± h rounds to X) and the step looks converged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from optimbench import functions, memory
from optimbench.cli import check_spec, parse_spec, spec_help
from optimbench.files import DESCENT_IDENTITY as IDENTITY
from optimbench.files import DESCENT_SUMMARY_COLUMNS as SUMMARY_COLUMNS
from optimbench.files import DESCENT_TRAJECTORY_COLUMNS
from optimbench.io import write_rows
from optimbench.metrics import diverged
from optimbench.optim import build_optimizer, optimizer_step, schedules

TRAJECTORY_COLUMNS = DESCENT_TRAJECTORY_COLUMNS[len(IDENTITY):]  # a run's own columns, after its identity
REACHED_DISTANCE = 0.05  # a run "reached the minimum" when it ends this close to a global minimum


def _row(epoch, point, value, grad, step) -> dict:
    return {"epoch": epoch, "x": float(point[0]), "y": float(point[1]), "f": float(value),
            "grad_x": float(grad[0]), "grad_y": float(grad[1]), "step": float(step)}


def blew_up(start_point, start_value, point, value) -> bool:
    """Whether a run at `point` (2,) with value f = `value` diverged from its start: the divergence rule
    (optimbench.metrics.diverged) on f and on max(|x|, |y|), each against its value at the start."""
    point, start_point = np.asarray(point, dtype=np.float64), np.asarray(start_point, dtype=np.float64)
    return (diverged(value, start_value)
            or diverged(np.abs(point).max(), np.abs(start_point).max()))  # NaN propagates


def trajectory_diverged(trajectory: list[dict]) -> bool:
    """Whether a trajectory's last row diverged from its first (epoch 0, the start): see blew_up."""
    first, last = trajectory[0], trajectory[-1]
    return blew_up((first["x"], first["y"]), first["f"], (last["x"], last["y"]), last["f"])


def article_descent(fn, start, lr, momentum, scheme, h, tol, max_epochs) -> tuple[list[dict], bool]:
    """The article's vanilla (momentum None) or momentum update; returns (trajectory, converged): the
    trajectory one row (dict of TRAJECTORY_COLUMNS) per epoch, epoch 0 the start."""
    point = np.asarray(start, dtype=np.float64)
    velocity, start_value = np.zeros(2), fn.f(point)
    rows = [_row(0, point, start_value, (np.nan, np.nan), np.nan)]
    for epoch in range(1, max_epochs + 1):
        grad = functions.gradient(fn.f, point, scheme, h)
        velocity = (momentum * velocity if momentum is not None else 0.0) + lr * grad
        new_point = point - velocity
        step = np.abs(new_point - point).sum()
        point = new_point
        value = fn.f(point)
        rows.append(_row(epoch, point, value, grad, step))
        if blew_up(start, start_value, point, value):  # before the stopping rule: a blow-up never converges
            break
        if step < tol:
            return rows, True
    return rows, False


def optimizer_descent(fn, start, entry, kwargs, scheme, h, tol, max_epochs) -> tuple[list[dict], bool]:
    """A torch optimizer (registry entry + kwargs overrides) moves the point; same stopping rule and
    trajectory rows as article_descent."""
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = build_optimizer(entry, [point], kwargs)
    steppers = schedules(entry, optimizer, None, max_epochs)  # Demon decays over the epoch cap
    start_value = float(fn.f(point.detach()))
    rows = [_row(0, point.detach().numpy(), start_value, (np.nan, np.nan), np.nan)]
    first_grad = []

    def compute_gradients(create_graph: bool) -> torch.Tensor:
        """The scheme's gradient at the current point as point.grad; with create_graph it keeps its graph
        (autograd's, or that of the finite differences, which are differentiable in the point)."""
        if create_graph:
            grad = functions.gradient(fn.f, point, scheme, h, create_graph=True)
        else:
            grad = functions.gradient(fn.f, point.detach(), scheme, h)
        point.grad = grad
        first_grad.append(grad.detach().clone())
        return fn.f(point.detach())

    for epoch in range(1, max_epochs + 1):
        before = point.detach().clone()
        first_grad.clear()
        optimizer_step(optimizer, compute_gradients)
        for stepper in steppers:
            stepper.step()
        after = point.detach()
        step, value = (after - before).abs().sum().item(), float(fn.f(after))
        rows.append(_row(epoch, after.numpy(), value, first_grad[0].numpy(), step))
        if blew_up(start, start_value, after.numpy(), value):  # before the stopping rule, as article_descent
            break
        if step < tol:
            return rows, True
    return rows, False


def summarize(spec: dict, fn, trajectory: list[dict], converged: bool) -> dict:
    """The run's summary row: epochs, stop reason, final point and value, distance to the minimum.
    `diverged` is the divergence rule on the last row (trajectory_diverged); a diverged run is neither
    converged nor at the minimum, and its distance is NaN."""
    last = trajectory[-1]
    blown = trajectory_diverged(trajectory)
    distance = np.nan if blown else float(fn.distance_to_minimum((last["x"], last["y"])))
    return {"function": spec["function"], "method": spec["method"], "gradient": spec["gradient"],
            "group": spec.get("group"), "kind": spec["kind"], "lr": spec.get("lr"), "momentum": spec.get("momentum"),
            "h": spec["h"], "tol": spec["tol"], "start_x": spec["start"][0], "start_y": spec["start"][1],
            "epochs": int(last["epoch"]), "converged": bool(converged and not blown), "diverged": blown,
            "final_x": last["x"], "final_y": last["y"], "final_f": last["f"], "distance_to_minimum": distance,
            "reached_minimum": bool(not blown and distance < REACHED_DISTANCE)}


def tuned_descent(fn, start, entry, kwargs, search: dict, **common) -> tuple[list[dict], bool, list[dict]]:
    """The budgeted learning-rate search of a descent group (as pytorch-optimizer's visualisations choose
    each optimizer's lr): `search["trials"]` learning rates log-spaced over [low, high], each run for the
    full budget; the lowest final function value wins (a run diverged by trajectory_diverged loses, ties go
    to the smaller lr).
    Returns the winner's (trajectory, converged) and every trial's {lr, final_f, score, selected}."""
    trials, best = [], None
    for lr in np.geomspace(search["low"], search["high"], search["trials"]):
        trajectory, converged = optimizer_descent(fn, start, entry, {**kwargs, "lr": float(lr)}, **common)
        final = trajectory[-1]["f"]
        score = np.inf if trajectory_diverged(trajectory) else final
        trials.append({"lr": float(lr), "final_f": final, "score": score})
        if best is None or score < best[0]:
            best = (score, trajectory, converged, float(lr))
    return best[1], best[2], [{**trial, "selected": trial["lr"] == best[3]} for trial in trials]


def run(spec: dict) -> tuple[list[dict], dict]:
    """Run one descent run from its spec; returns (trajectory, summary row). With spec["tune"] (optimizer
    kind), the learning rate is chosen by tuned_descent and the summary records it and every lr tried."""
    fn = functions.get(spec["function"])
    common = dict(scheme=spec["gradient"], h=spec["h"], tol=spec["tol"], max_epochs=spec["max_epochs"])
    tried = None
    if spec["kind"] == "article":
        trajectory, converged = article_descent(fn, spec["start"], spec["lr"], spec.get("momentum"), **common)
    elif spec.get("tune"):
        trajectory, converged, tried = tuned_descent(fn, spec["start"], spec["optimizer"], spec.get("kwargs", {}),
                                                     spec["tune"], **common)
        spec = {**spec, "lr": next(trial["lr"] for trial in tried if trial["selected"])}
    else:
        trajectory, converged = optimizer_descent(fn, spec["start"], spec["optimizer"], spec.get("kwargs", {}),
                                                  **common)
    summary = summarize(spec, fn, trajectory, converged)
    summary["tuned"] = tried is not None
    summary["lrs_tried"] = "" if tried is None else " ".join(f"{t['lr']:.3g}:{t['final_f']:.4g}" for t in tried)
    return trajectory, summary


# descent's --spec (one job of a descent group, see config/schema.yaml's descent section).
SPEC_REQUIRED = {
    "function": f"one of {sorted(functions.FUNCTIONS)}",
    "method": "the method's name (recorded)",
    "gradient": f"one of {list(functions.GRADIENTS)}",
    "kind": "article (the article's update: needs lr, optional momentum) | optimizer (needs optimizer)",
    "h": "finite-difference step",
    "tol": "stop when sum |X_new - X| < tol (0: never)",
    "max_epochs": "cap on updates",
    "start": "start point [x, y]",
}
KIND_REQUIRED = {"article": {"lr": "learning rate of the article's update"},
                 "optimizer": {"optimizer": "registry entry {class, kwargs, demon}"}}
SPEC_OPTIONAL = {
    "momentum": "article kind: momentum factor m (absent: the vanilla update)",
    "update": "article kind: vanilla | momentum (recorded)",
    "lr": "article kind: learning rate; optimizer kind: the lr recorded in the summary",
    "optimizer": "optimizer kind: registry entry {class, kwargs, demon}",
    "kwargs": "optimizer kind: keyword arguments overriding the entry's",
    "group": "the descent group's name (recorded)",
    "tune": "optimizer kind: {trials, low, high}: choose the lr among `trials` log-spaced values by the final value",
}


def check_descent_spec(spec) -> dict:
    """One run's spec with every key its kind needs (SystemExit naming the missing ones)."""
    spec = check_spec(spec, SPEC_REQUIRED, SPEC_OPTIONAL)
    if spec["kind"] not in KIND_REQUIRED:
        raise SystemExit(f"--spec kind = {spec['kind']!r}: use one of {sorted(KIND_REQUIRED)}")
    return check_spec(spec, KIND_REQUIRED[spec["kind"]], {})


def read_job_specs(value: str) -> list[dict]:
    """A job's run specs: --spec as one run's spec, or a list of them (every run of one group on one
    function, as the workflow passes them), each checked by check_descent_spec."""
    parsed = parse_spec(value)
    specs = parsed if isinstance(parsed, list) else [parsed]
    if not specs:
        raise SystemExit("--spec []: give at least one run spec")
    return [check_descent_spec(spec) for spec in specs]


def run_job(specs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Every run of a job, in order: (trajectory rows, summary rows), each row with its run's identity."""
    trajectories, summaries = [], []
    for spec in specs:
        trajectory, summary = run(spec)
        identity = {key: spec.get(key) for key in IDENTITY}  # the run's identity travels inside its rows
        trajectories += [{**identity, **row} for row in trajectory]
        summaries.append(summary)
    return trajectories, summaries


def main(argv=None) -> None:
    required = {**SPEC_REQUIRED, **{f"{k} (kind {kind})": v for kind, keys in KIND_REQUIRED.items()
                                    for k, v in keys.items()}}
    parser = argparse.ArgumentParser(description="Run a gradient-descent job (one run, or a list of runs) on 2-D "
                                                 "test functions.",
                                     epilog=spec_help(required, SPEC_OPTIONAL),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the run's spec as inline JSON or a JSON/YAML file (keys "
                                                      "below), or an inline JSON list of run specs")
    parser.add_argument("--trajectory", required=True, help="CSV of every run's points, values and gradients")
    parser.add_argument("--summary", required=True, help="CSV of one summary row per run")
    args = parser.parse_args(argv)

    specs = read_job_specs(args.spec)
    trajectories, summaries = run_job(specs)
    write_rows(Path(args.trajectory), trajectories, list(DESCENT_TRAJECTORY_COLUMNS))
    # The job's peak host memory (descent runs on the CPU: no GPU peak), as run.json records a training job's.
    peak = memory.peak_host_mb()
    write_rows(Path(args.summary), [{**row, "peak_host_mb": peak} for row in summaries],
               [*SUMMARY_COLUMNS, "peak_host_mb"])
    for row in summaries:
        print(f"{row['function']}/{row['method']}/{row['gradient']}: {row['epochs']} epochs, converged "
              f"{row['converged']}, final f {row['final_f']:.6g}, distance to minimum {row['distance_to_minimum']:.4g}")


if __name__ == "__main__":
    main()
