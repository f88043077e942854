"""One training run: a test problem (optimbench.problems), an optimizer, a seed (SPEC §1.3, §2.2, §3).

One epoch loop for every task of the registry (classification, capsule, VAE, language model): the data
set lives on the device (uint8 images N×C×H×W, or a token stream); random flips and zero-padded crops
happen there in batches (pad = problem.augment, 0 = none); each batch's metric sums (task.batch_sums)
accumulate on the device and are read once per epoch. Language models run Zaremba et al. (2014)'s
truncated BPTT: the stream cut into batch_size streams, windows of `bptt` tokens, the LSTM state carried
from window to window and detached between them. A checkpoint each epoch lets a killed run resume with
bit-identical results on the CPU. A training loss that diverges (optimbench.metrics.diverged: non-finite, or
10⁶ times the first batch's loss at the initial weights) ends the run as diverged.

The data on the device and its batches are optimbench.device_data's; checkpoints and the run's fingerprint
optimbench.checkpoints'. With a run store (optimbench.store), the job, under its folder's writer lock, checks
that the optimizer code it imported is its spec's, resolves its execution on this machine (store_execution),
and copies the store's entry of that key instead of training, or publishes the run it trained.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from optimbench import checkpoints, events, hardware, memory, provenance, store
from optimbench import problems as problems_mod
from optimbench.cli import read_spec, spec_help
from optimbench.device_data import BPTT, Dataset, Normalize, batches, load_data, tokens_as_is
from optimbench.io import atomic_path, write_json, write_rows
from optimbench.metrics import diverged as loss_diverged
from optimbench.optim import CodeChanged, build_optimizer, optimizer_step, schedules, step_kind, verify_code
from optimbench.problems import Problem
from optimbench.resnet import build_model, count_parameters
from optimbench.runs import apply_selection

if TYPE_CHECKING:
    pass

RECORDED_SPLITS = ("train", "val", "test")  # the splits metrics.csv records every metric of
RUN_COLUMNS = ["lr", "momentum", "epoch_seconds", "eval_seconds", "samples_per_second", "diverged"]
RESNET18_MODELS = ("resnet18_article", "resnet18_cifar")  # spec["model"] choices of the resnet18_cifar problems


def metric_columns(problem: Problem) -> list[str]:
    """metrics.csv's columns: epoch, `{split}_{name}` for split in train, val, test and every metric of the
    problem's task (e.g. train_loss, train_acc, val_loss, ...), then lr ... diverged (RUN_COLUMNS)."""
    metrics = [f"{split}_{m.name}" for split in RECORDED_SPLITS for m in problem.task.metric_defs]
    return ["epoch", *metrics, *RUN_COLUMNS]


def get_problem(spec: dict) -> Problem:
    """The spec's problem (optimbench.problems).

    Raises:
        ValueError: for a name not in the registry, listing the known ones.
    """
    try:
        return problems_mod.get(spec["problem"])
    except KeyError as exc:
        raise ValueError(f"spec['problem']: {exc.args[0]}") from None


# ---------------------------------------------------------------- setup
def layout_and_precision(spec: dict, device: torch.device) -> tuple[hardware.Choice, hardware.Choice]:
    """The run's channels-last and bf16 settings (auto/on/off) resolved for the device and, on the CPU,
    for what it offers (optimbench.hardware): (channels_last, bf16), each with its reason."""
    flags = hardware.cpu_flags() if device.type == "cpu" else frozenset()
    width = spec.get("width") or 64  # None = the paper's size: a wide model
    return (hardware.choose_channels_last(spec.get("channels_last", "auto"), device.type, width, flags),
            hardware.choose_bf16(spec.get("bf16", "auto"), device.type, flags))


def compile_mode(value: str, device: torch.device) -> str | None:
    """torch.compile mode for the config's `compile` (None = eager). auto: reduce-overhead (CUDA graphs,
    one launch per step instead of hundreds: what keeps batch 64 from being host-bound) on CUDA;
    eager on the CPU, unless the run is long enough to pay for compiling (compile_choice)."""
    if value == "auto":
        return "reduce-overhead" if device.type == "cuda" else None
    return {"off": None, "on": "default"}.get(value, value)


# torch.compile on the CPU, the bare step of CIFAR ResNet18 at batch 64 in auto's bf16 and channels-last,
# measured on an AMD EPYC with AVX512-BF16, 2 threads (issue 31, benchmarks/throughput.py --break-even; with
# TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 for a cold compile): compiling costs 28 s once per run (0.6-0.8 s with
# the inductor cache warm); at width 8 a step took 38-45 ms eager and 31-33 ms compiled, at width 64 587-629
# ms against 619-627 ms (no faster within the noise). Compiling removes a fixed per-step overhead (the eager
# dispatch of the small ops it fuses), not a share of the convolutions' time, so `auto` compiles on the CPU
# only when the run's steps pay the compile back at the smallest saving measured at width 8:
# total_steps x STEP_SECONDS_SAVED_CPU > COMPILE_SECONDS_CPU (4,000 steps).
COMPILE_SECONDS_CPU = 28.0
STEP_SECONDS_SAVED_CPU = 0.007


def compile_choice(value: str, device: torch.device, total_steps: int) -> hardware.Choice:
    """Whether the run compiles, and why (run.json's compile_reason): the config's `compile` unless auto; auto
    is CUDA graphs on CUDA, and on the CPU compiled only past the measured break-even (COMPILE_SECONDS_CPU)."""
    if value != "auto":
        return hardware.Choice(compile_mode(value, device) is not None, f"train.compile = {value}")
    if device.type == "cuda":
        return hardware.Choice(True, "auto: CUDA graphs (reduce-overhead) on CUDA: one launch per step")
    saved = total_steps * STEP_SECONDS_SAVED_CPU
    verdict = "compiled" if saved > COMPILE_SECONDS_CPU else "eager"
    return hardware.Choice(verdict == "compiled",
                           f"auto on the CPU: {total_steps} steps x {STEP_SECONDS_SAVED_CPU * 1e3:.0f} ms saved per "
                           f"step = {saved:.1f} s against {COMPILE_SECONDS_CPU:.0f} s of compiling (measured "
                           f"break-even, train.COMPILE_SECONDS_CPU): {verdict}")


def process_age() -> float:
    """Seconds since this process started (its creation time, from psutil), e.g. a job's start-up cost."""
    import psutil

    return time.time() - psutil.Process().create_time()


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy and random."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


# ---------------------------------------------------------------- one epoch, any problem
def run_model(task, model, inputs, targets, state):
    """The task's outputs; a language model also takes and returns its recurrent state."""
    if task.kind == "language_model":
        return task.forward(model, inputs, targets, state)
    return task.forward(model, inputs, targets)


def next_state(task, outputs):
    """The state a language model carries into its next window: detached (truncated BPTT) and copied (a
    CUDA graph's outputs are overwritten by its next replay); None for other tasks."""
    if task.kind != "language_model":
        return None
    return tuple(s.detach().clone() for s in outputs[1])


def mark_step_begin(model) -> None:
    """Tell torch.compile's CUDA graphs that a new forward begins; nothing for an eager model (the call
    imports torch._inductor: 2 s before an eager run's first step)."""
    if hasattr(model, "_orig_mod"):  # a torch.compile'd module
        torch.compiler.cudagraph_mark_step_begin()


def add_sums(total: dict | None, sums: dict) -> dict:
    """Running device-side sums (no host sync)."""
    sums = {k: v.detach() for k, v in sums.items()}
    return sums if total is None else {k: total[k] + v for k, v in sums.items()}


def train_epoch(problem: Problem, model, optimizer, steppers, data, normalize, batch_size, gen, autocast,
                bptt: int = BPTT):
    """One training pass (see `batches`); yields the running device-side task.batch_sums after each step.

    `steppers` (lr schedule, Demon, ...) step after every optimizer step. Closure-based (LBFGS) and
    Hessian-based (AdaHessian, SophiaH) optimizers step through optim.optimizer_step; the metrics and a
    language model's carried state are those of a step's first evaluation (its starting weights). The
    gradient norm is clipped to problem.grad_clip after every backward. Nothing here waits for the
    device: the caller reads the sums once per epoch (task.metrics)."""
    task, params = problem.task, [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    total, state = None, None
    for inputs, targets in batches(problem, data, normalize, batch_size, gen, bptt):
        evaluations, carried = 0, None

        def compute_gradients(create_graph: bool) -> torch.Tensor:
            nonlocal evaluations, total, carried
            mark_step_begin(model)  # a new forward (CUDA graphs of compile modes)
            with autocast():
                outputs = run_model(task, model, inputs, targets, state)
                loss = task.loss(outputs, inputs, targets)
            if evaluations == 0:  # metrics at the step's starting weights (LBFGS evaluates several times)
                # Read the outputs before backward: a CUDA graph's outputs are reused by its next replay.
                total = add_sums(total, task.batch_sums(outputs, inputs, targets))
                carried = next_state(task, outputs)
            evaluations += 1
            loss.backward(create_graph=create_graph)
            if problem.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, problem.grad_clip)
            return loss

        optimizer_step(optimizer, compute_gradients)
        state = carried
        for stepper in steppers:
            stepper.step()
        yield total


def evaluate(problem: Problem, model, data, normalize, batch_size, autocast, bptt: int = BPTT) -> dict[str, float]:
    """The task's metrics (e.g. {"loss", "acc"}) of the model in eval mode on un-augmented data, in order
    (the article re-augments its test set; we do not)."""
    task = problem.task
    model.eval()
    total, state = None, None
    for inputs, targets in batches(problem, data, normalize, batch_size, None, bptt):
        mark_step_begin(model)
        with torch.no_grad():  # not a decorator: mutmut (make mutation) skips decorated functions
            with autocast():
                outputs = run_model(task, model, inputs, targets, state)
            total = add_sums(total, task.batch_sums(outputs, inputs, targets))
            state = next_state(task, outputs)
    return task.metrics(total)  # host sync: once per evaluation


# ---------------------------------------------------------------- the run
def current_momentum(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's momentum (SGD-style `momentum`, else `betas[0]`: Adam's β1, Demon's
    decayed β); NaN for an optimizer with neither (Adagrad)."""
    group = optimizer.param_groups[0]
    if "momentum" in group:
        return float(group["momentum"])
    return float(group["betas"][0]) if "betas" in group else math.nan


def build_problem_model(spec: dict, problem: Problem, sizes: dict) -> torch.nn.Module:
    """The problem's model at spec["width"] (None: the paper's size), its classes, input shape or vocabulary
    from the data. The resnet18_cifar problems take spec["model"] resnet18_article or resnet18_cifar
    (optimbench.resnet); the others their registry model (optimbench.paper_models).

    Raises:
        ValueError: spec["model"] is not a model of the problem.
    """
    if problem.model == "resnet18_cifar":
        if spec["model"] not in RESNET18_MODELS:
            raise ValueError(f"spec['model'] = {spec['model']!r}: problem {problem.name} trains one of "
                             f"{', '.join(RESNET18_MODELS)}")
        return build_model(spec["model"], spec["width"] or 64, sizes["num_classes"], spec.get("pretrained"))
    if spec["model"] != problem.model:
        raise ValueError(f"spec['model'] = {spec['model']!r}: problem {problem.name} trains {problem.model!r}")
    return problem.build_model(spec["width"], **{k: v for k, v in sizes.items() if k in problem.model_kwargs})


def is_convolutional(model: torch.nn.Module) -> bool:
    """Whether the model convolves 4-D images (channels-last applies)."""
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


@dataclass
class Training:
    """Everything one run steps: the model, its optimizer and schedules, the augmentation generator."""

    problem: Problem
    model: torch.nn.Module
    forward: torch.nn.Module  # the model, or its torch.compile'd wrapper
    optimizer: torch.optim.Optimizer
    compile_mode: str | None
    steppers: list
    gen: torch.Generator
    normalize: object  # uint8 images -> model inputs (Normalize), or tokens_as_is
    autocast: object
    channels_last: bool
    bf16: bool
    reasons: dict = field(default_factory=dict)  # why channels_last and bf16 are on or off

    def state(self, epoch: int, rows: list, fingerprint: str) -> dict:
        return {"spec_hash": fingerprint, "epoch": epoch, "rows": rows, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "schedules": [s.state_dict() for s in self.steppers],
                "rng": checkpoints.rng_states(self.gen)}

    def load(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        for stepper, state in zip(self.steppers, ckpt["schedules"]):
            stepper.load_state_dict(state)
        checkpoints.restore_rng(ckpt["rng"], self.gen)


def build_training(spec: dict, device: torch.device, data: Dataset, total_steps: int) -> Training:
    """Seeded model of the spec's problem (channels-last for convolutional networks, bf16 autocast and
    compile as configured, `auto` resolved per device and CPU by `layout_and_precision`), its input
    normalisation, optimizer and schedules."""
    problem = get_problem(spec)
    seed_everything(spec["seed"])
    model = build_problem_model(spec, problem, data.sizes).to(device)
    layout, precision = layout_and_precision(spec, device)
    if not is_convolutional(model):
        layout = hardware.Choice(False, f"{problem.model} is not a convolutional network")
    channels_last, bf16 = layout.on, precision.on
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(spec["optimizer"], model.parameters())
    gen = torch.Generator(device=device)
    gen.manual_seed(spec["seed"])
    compile_setting = spec.get("compile", "auto")
    compiling = compile_choice(compile_setting, device, total_steps)
    mode = (compile_mode(compile_setting, device) or "default") if compiling.on else None
    if compile_setting == "auto" and step_kind(optimizer)[1]:
        mode = None  # Hessian-based optimizers differentiate the gradients: compiled graphs cannot (double backward)
        compiling = hardware.Choice(False, "auto: a Hessian-based optimizer (double backward) runs eagerly")
    if mode and compile_setting == "auto":
        torch._dynamo.config.suppress_errors = True  # auto: a graph that fails to compile runs eagerly
    # dynamic=False: one static graph per batch shape (full, last partial, evaluation) for CUDA graphs.
    forward = torch.compile(model, mode=mode, dynamic=False) if mode else model
    normalize = tokens_as_is if data.normalisation is None else Normalize(device, channels_last, *data.normalisation)
    return Training(problem=problem, model=model, forward=forward, optimizer=optimizer, compile_mode=mode,
                    steppers=schedules(spec["optimizer"], optimizer, spec.get("lr_schedule"), total_steps),
                    gen=gen, normalize=normalize,
                    autocast=lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16),
                    channels_last=channels_last, bf16=bf16,
                    reasons={"channels_last": layout.reason, "bf16": precision.reason,
                             "compile": compiling.reason})


def split_columns(split: str, problem: Problem, values: dict | None) -> dict:
    """{f"{split}_{name}": value} for every metric of the problem's task; NaN where not evaluated (None)."""
    return {f"{split}_{m.name}": math.nan if values is None else values[m.name] for m in problem.task.metric_defs}


def loss_name(problem: Problem) -> str:
    """The task's loss metric (loss, neg_elbo): what the divergence check and the progress bar read."""
    return problem.task.metric_defs[0].name


def epoch_row(spec, training: Training, epoch: int, data: Dataset, bar, start_loss: float | None = None) -> dict:
    """Train one epoch, evaluate on the validation split (if any) and, as spec["test"] says, on the test
    set (neither after a divergence); the epoch's metrics (metric_columns). `start_loss`: the run's loss at
    its initial weights, the divergence rule's reference; None (the first epoch) measures it on the first
    batch and returns it in the row as `start_loss` (kept in the checkpoint's rows, not in metrics.csv)."""
    problem, bptt = training.problem, spec.get("bptt", BPTT)
    tic = time.perf_counter()
    for sums in train_epoch(problem, training.forward, training.optimizer, training.steppers, data.train,
                            training.normalize, spec["batch_size"], training.gen, training.autocast, bptt):
        if start_loss is None:  # host sync: once per run (the first batch's metrics, at the initial weights)
            start_loss = problem.task.metrics(sums)[loss_name(problem)]
        bar.update(1)
    train = problem.task.metrics(sums)  # host sync: once per epoch
    seconds = time.perf_counter() - tic
    diverged = loss_diverged(train[loss_name(problem)], start_loss)
    tic = time.perf_counter()
    # The test set: every epoch (the article's study), only after the last epoch (tuned final runs), or
    # never (tuning trials: the test set decides nothing).
    mode = spec.get("test", "every_epoch")
    on_test = mode == "every_epoch" or (mode == "final" and epoch == spec["epochs"])

    def evaluated(split_data):
        return evaluate(problem, training.forward, split_data, training.normalize, spec["eval_batch_size"],
                        training.autocast, bptt)

    test = None if diverged or not on_test else evaluated(data.test)
    val = None if diverged or data.validation is None else evaluated(data.validation)
    return {"epoch": epoch, **split_columns("train", problem, train), **split_columns("val", problem, val),
            **split_columns("test", problem, test),
            "lr": training.optimizer.param_groups[0]["lr"], "momentum": current_momentum(training.optimizer),
            "epoch_seconds": seconds,
            "eval_seconds": time.perf_counter() - tic, "samples_per_second": len(data.train) / seconds,
            "diverged": diverged, "start_loss": start_loss}


def metrics_frame(rows: list[dict], problem: Problem):
    """metrics.csv's table as a pandas DataFrame (pandas imported here: a training job never needs it)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=metric_columns(problem))


def run_threads(spec: dict, threads: int | None) -> int:
    """The run's CPU threads: spec["threads"] (part of the result spec: a CPU run's numbers change with it),
    else `threads`, else 1.

    Raises:
        ValueError: `threads` is given and differs from spec["threads"].
    """
    if threads is not None and spec.get("threads", threads) != threads:
        raise ValueError(f"--threads {threads} but spec['threads'] = {spec['threads']}: the thread count changes "
                         f"a CPU run's numbers, so it is part of the run's spec; drop --threads or change the spec")
    return int(spec.get("threads", threads or 1))


@dataclass(frozen=True)
class Store:
    """Where a job's run store is (None: no store) and where it records what it did (optimbench.store)."""

    at: Path | None = None
    log: Path | None = None
    invocation: str | None = None  # the Snakemake invocation that runs the job (its records name it)


def run(spec: dict, out_dir, threads: int | None = None, save_model: bool = True,
        mem_mb: int | None = None, as_frame: bool = True, run_store: Store = Store()):
    """Train (or resume) the run described by `spec`; write metrics.csv, run.json and (unless save_model is
    False, e.g. for tuning trials) model.pt to out_dir. One writer per folder (checkpoints.writer_lock).
    `threads` (run_threads), `mem_mb` the memory the scheduler granted (recorded beside the peaks).
    With a run store, under the folder's lock: the run's key is resolved on this machine (store_execution);
    a stored run of that key is copied in instead of training, a trained one published.
    Returns metrics.csv's table: a pandas DataFrame, or with as_frame False its rows as dicts (the job's
    `main`: no pandas import).

    Raises:
        ValueError: an unknown problem, a model not of the problem, data not of its data set, threads that
            contradict the spec's.
        optim.CodeChanged: the optimizer's code is not the code the spec's fingerprint names.
        checkpoints.RunFolderLocked: another live trainer writes out_dir.
    """
    problem = get_problem(spec)  # before anything is written
    threads = run_threads(spec, threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with checkpoints.writer_lock(out_dir):
        rows = _run_locked(spec, problem, out_dir, threads, save_model, mem_mb, run_store)
    return metrics_frame(rows, problem) if as_frame else rows


def store_execution(spec: dict, training: Training, device: torch.device, threads: int) -> dict:
    """What this job resolved that changes the run's numbers (the run store's key, run.json's `execution`):
    hardware.numerics (device, CPU ISA or GPU model, versions) and the run's precision, layout, compile
    mode, deterministic algorithms and threads."""
    return {**hardware.numerics(device, training.bf16), "bf16": training.bf16,
            "channels_last": training.channels_last, "compile": training.compile_mode,
            "deterministic": bool(spec.get("deterministic", True) and device.type == "cpu"), "threads": threads}


def read_finished(path: Path) -> list[dict]:
    """metrics.csv's rows (a fetched run's), numbers as floats (no pandas)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v == "True" if k == "diverged" else float(v) if v else math.nan for k, v in row.items()}
            for row in rows]


def _run_locked(spec: dict, problem: Problem, out_dir: Path, threads: int, save_model: bool,
                mem_mb: int | None, run_store: Store) -> list[dict]:
    started = provenance.now()
    verify_code(spec["optimizer"])  # what runs is what the spec (and the store's key) names
    torch.set_num_threads(threads)  # bit-identity on the CPU depends on it: in the result spec
    device = hardware.resolve_device(spec.get("device", "auto"))  # the config check steps on it too
    torch.use_deterministic_algorithms(spec.get("deterministic", True) and device.type == "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = load_data(spec, problem, device)
    steps_per_epoch = data.train.steps(spec["batch_size"], spec.get("bptt", BPTT))
    training = build_training(spec, device, data, spec["epochs"] * steps_per_epoch)
    # What `auto` resolved to belongs to the fingerprint: resuming on a CPU of another kind (a mixed cluster)
    # must not switch a run's precision or layout half-way.
    resolved = {"bf16": training.bf16, "channels_last": training.channels_last, "device": device.type,
                "threads": threads}
    fingerprint, ckpt_path = checkpoints.spec_hash({**spec, "resolved": resolved}), out_dir / checkpoints.CHECKPOINT
    execution = store_execution(spec, training, device, threads)
    result_spec = {k: v for k, v in spec.items() if k != "compile"}  # the resolved mode is in `execution`
    run_key = store.key(result_spec, execution)
    need = ("model.pt",) if save_model else ()
    if run_store.at is not None and store.fetch_for_job(run_store.at, run_key, out_dir, run_store.log, need,
                                                         run_store.invocation):
        ckpt_path.unlink(missing_ok=True)
        print(f"fetched from the run store {run_store.at} (key {run_key}): not trained", file=sys.stderr)
        return read_finished(out_dir / "metrics.csv")
    (out_dir / store.MARKER).unlink(missing_ok=True)  # trained here: no earlier fetch's mark
    rows, start_epoch = checkpoints.resume(ckpt_path, fingerprint, training, device)
    events.sync_epochs(out_dir, problem.name, rows, time.time())  # TensorBoard's curves: the epochs done
    startup_seconds = process_age()  # interpreter, imports, data load, model build: a fixed cost per run

    bar = tqdm(total=spec["epochs"] * steps_per_epoch, initial=start_epoch * steps_per_epoch, file=sys.stderr,
               desc=f"{problem.name} {spec.get('optimizer_name', '')} seed {spec['seed']}", unit="step",
               mininterval=0.5 if sys.stderr.isatty() else 10)
    for epoch in range(start_epoch + 1, spec["epochs"] + 1):
        if rows and rows[-1]["diverged"]:
            break
        rows.append(epoch_row(spec, training, epoch, data, bar, rows[0].get("start_loss") if rows else None))
        bar.set_postfix({"epoch": epoch, "loss": f"{rows[-1]['train_' + loss_name(problem)]:.4f}",
                         problem.primary: f"{rows[-1][problem.primary]:.4g}"})
        checkpoints.save_checkpoint(ckpt_path, training.state(epoch, rows, fingerprint))
        events.write_epoch(out_dir, problem.name, rows[-1], time.time())
    bar.close()
    diverged = bool(rows and rows[-1]["diverged"])
    if diverged:
        loss, start = rows[-1]["train_" + loss_name(problem)], rows[0].get("start_loss", math.nan)
        print(f"run diverged at epoch {rows[-1]['epoch']} (training loss {loss:.4g}, first batch's {start:.4g}: "
              "optimbench.metrics.diverged); recorded", file=sys.stderr)

    if save_model:
        with atomic_path(out_dir / "model.pt") as tmp:
            torch.save({"model": training.model.state_dict(), "spec": spec, "epochs_completed": len(rows)}, tmp)
    write_json(out_dir / "run.json", {
        "spec": spec, "spec_hash": fingerprint, "problem": problem.name, "primary_metric": problem.primary,
        "kind": problem.kind, "versions": provenance.versions(),
        "device": str(device), "device_name": provenance.device_name(device), "threads": threads,
        "channels_last": training.channels_last, "channels_last_reason": training.reasons.get("channels_last"),
        "bf16": training.bf16, "bf16_reason": training.reasons.get("bf16"), "compile_mode": training.compile_mode,
        "compile_reason": training.reasons.get("compile"),
        "cpu": hardware.cpu_summary(hardware.cpu_flags()),
        "inputs": problem.inputs, "input_mean_std": data.normalisation and [list(v) for v in data.normalisation],
        "parameters": count_parameters(training.model), "steps_per_epoch": steps_per_epoch,
        "train_images": len(data.train), "test_images": len(data.test),
        "resumed_after_epoch": start_epoch or None, "diverged": diverged, "startup_seconds": startup_seconds,
        "diverged_epoch": rows[-1]["epoch"] if diverged else None, "epochs_completed": len(rows),
        "git_commit": provenance.git_commit(), "started": started, "finished": provenance.now(),
        "store_key": run_key, "execution": execution,
        **memory.peaks(device), "mem_mb": mem_mb,
        "job_seconds": process_age()})  # the job's wall time to here (the cost table's; a resumed run's: this attempt)
    write_rows(out_dir / "metrics.csv", rows, metric_columns(problem))  # last: its presence marks a finished run
    ckpt_path.unlink(missing_ok=True)
    if run_store.at is not None:
        store.publish_for_job(run_store.at, run_key, out_dir, result_spec, execution, run_store.log,
                              run_store.invocation)
    return rows


# The trainer's --spec (config.yaml's train section resolved for one run, see config/schema.yaml).
SPEC_REQUIRED = {
    "problem": f"the test problem (optimbench.problems): {', '.join(problems_mod.PROBLEMS)}",
    "data": "the problem's canonical .npz (prepare_data's --out): images x_/y_train, x_/y_test, classes; "
            "or PTB's tokens_train/valid/test, vocab",
    "model": "resnet18_article | resnet18_cifar for the resnet18_cifar problems; else the problem's model "
             "(vgg16_bn, wrn, capsnet, lstm_lm, vae)",
    "width": "the model's size knob (ResNet18/VGG: channels of the first stage, 64; WRN: widening factor; "
             "CapsNet: Conv1 channels; LSTM: hidden units; VAE: hidden units); null = the paper's size",
    "optimizer": "registry entry {class, kwargs, demon}, e.g. {\"class\": \"SGD\", \"kwargs\": {\"lr\": 0.01}}",
    "seed": "seeds torch, NumPy, random and the augmentation",
    "epochs": "training epochs",
    "batch_size": "training batch size (images)",
    "eval_batch_size": "evaluation batch size (images)",
}
SPEC_OPTIONAL = {
    "pretrained": "local .pth of torchvision's ImageNet resnet18 (resnet18_article, width 64); default null",
    "lr_schedule": "null | linear | cosine | warmup-cosine; default null",
    "validation": "images: a validation split file (optimbench.split), its images held out of training; token "
                  "data: 'valid' (the data set's validation stream); evaluated every epoch; default none",
    "test": "every_epoch | final | never: when the test set is evaluated; default every_epoch",
    "bptt": f"language models: truncated-BPTT window in tokens (their batch sizes count parallel token "
            f"streams); default {BPTT}",
    "selected_trial": "the tuning trial whose setting this run uses (recorded)",
    "device": "auto | cpu | cuda; default auto",
    "channels_last": "auto | on | off (convolutional networks only); default auto",
    "bf16": "auto | on | off; default auto",
    "compile": "auto | off | on | reduce-overhead | max-autotune; default auto",
    "deterministic": "torch.use_deterministic_algorithms on the CPU; default true",
    "threads": "CPU threads (torch.set_num_threads); default --threads, else 1",
    "train_subset": "use the first N training images (tokens); default all",
    "test_subset": "use the first N test images (tokens); default all",
    "optimizer_name": "the optimizer's name in the config (progress bar)",
    "dataset": "the data set's name (recorded)",
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train one test problem with one optimizer and one seed.",
                                     epilog=spec_help(SPEC_REQUIRED, SPEC_OPTIONAL),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the run's spec as inline JSON or a JSON/YAML file (keys below)")
    parser.add_argument("--out", required=True, help="run folder (metrics.csv, run.json, model.pt)")
    parser.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads) of a spec without "
                                                    "`threads`; default 1")
    parser.add_argument("--mem-mb", type=int, help="host memory (MB) the scheduler granted: recorded in run.json "
                                                   "beside the measured peak")
    parser.add_argument("--execution", default="{}",
                        help='execution settings as JSON, e.g. {"compile": "off"}: how the run executes, never '
                             "what it computes (not part of the spec's fingerprint); \"store\": a run store's folder "
                             f"(default ${store.STORE_ENV}), \"store_log\": where to record what the job did with it, "
                             "\"store_invocation\": the Snakemake invocation that runs it")
    parser.add_argument("--selection", help="a tuning selection (JSON, optimbench.tune select): its setting is "
                                            "merged into the spec's optimizer kwargs and schedule")
    parser.add_argument("--no-model", action="store_true", help="do not write model.pt (tuning trials)")
    args = parser.parse_args(argv)

    spec = read_spec(args.spec, SPEC_REQUIRED, SPEC_OPTIONAL)
    if args.selection:
        spec = apply_selection(spec, json.loads(Path(args.selection).read_text()))
    execution = json.loads(args.execution)
    log = execution.pop("store_log", None)
    run_store = Store(store.location(execution.pop("store", None)), log and Path(log),
                      execution.pop("store_invocation", None))
    try:
        rows = run({**spec, **execution}, args.out, args.threads, save_model=not args.no_model,
                   mem_mb=args.mem_mb, as_frame=False, run_store=run_store)
    except (checkpoints.RunFolderLocked, CodeChanged) as exc:
        raise SystemExit(f"error: {exc}") from None
    problem, last = get_problem(spec), rows[-1]
    loss = f"train_{loss_name(problem)}"
    print(f"{len(rows)} epochs: {loss} {last[loss]:.4f}, {problem.primary} {last[problem.primary]:.4f}, "
          f"diverged {bool(last['diverged'])}")


if __name__ == "__main__":
    main()
