"""One training run: a model, an optimizer, a seed (SPEC §2.2, §3).

The data set lives on the device as uint8; flips and pad-4 crops happen there in batches; loss and
accuracy accumulate on the device and are read once per epoch. A checkpoint each epoch lets a
killed run resume with bit-identical results on the CPU. A non-finite loss ends the run as diverged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from optimbench import data as data_mod
from optimbench import hardware
from optimbench import provenance
from optimbench.io import atomic_path, write_csv, write_json
from optimbench.models import build_model, count_parameters, describe_load_error
from optimbench.optim import build_optimizer, optimizer_step, schedules, step_kind

# The article's normalisation (SPEC §1.2), on the 0..255 scale.
MEAN = (129.3, 124.1, 112.4)
STD = (68.2, 65.4, 70.4)
METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
                  "momentum", "epoch_seconds", "eval_seconds", "samples_per_second", "diverged"]
CHECKPOINT = "checkpoint.pt"


# ---------------------------------------------------------------- setup
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device = 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def layout_and_precision(spec: dict, device: torch.device) -> tuple[hardware.Choice, hardware.Choice]:
    """The run's channels-last and bf16 settings (auto/on/off) resolved for the device and, on the CPU,
    for what it offers (optimbench.hardware): (channels_last, bf16), each with its reason."""
    flags = hardware.cpu_flags() if device.type == "cpu" else frozenset()
    return (hardware.choose_channels_last(spec.get("channels_last", "auto"), device.type, spec["width"], flags),
            hardware.choose_bf16(spec.get("bf16", "auto"), device.type, flags))


def compile_mode(value: str, device: torch.device) -> str | None:
    """torch.compile mode for the config's `compile` (None = eager). auto: reduce-overhead (CUDA graphs,
    one launch per step instead of hundreds: what keeps batch 64 from being host-bound) on CUDA;
    eager on the CPU, where compiling measured no faster and costs 30-70 s per run."""
    if value == "auto":
        return "reduce-overhead" if device.type == "cuda" else None
    return {"off": None, "on": "default"}.get(value, value)


def process_age() -> float:
    """Seconds since this process started (its creation time, from psutil), e.g. a job's start-up cost."""
    import psutil

    return time.time() - psutil.Process().create_time()


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy and random."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def spec_hash(spec: dict) -> str:
    """Fingerprint of what determines a run's results (a checkpoint resumes only the same run)."""
    relevant = {k: v for k, v in spec.items() if k not in ("threads", "compile")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- device-side data
class DeviceData:
    """uint8 images (N×3×32×32) and labels resident on the device."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device):
        self.x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)
        self.y = torch.from_numpy(labels.astype(np.int64)).to(device)

    def __len__(self) -> int:
        return len(self.y)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random 32×32 crop of the zero-padded (4 px) image, per image."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (2, n), generator=gen, device=x.device)
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (offsets[1][:, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


class Normalize:
    """uint8 → float, normalised with the article's mean and std, in the model's memory format."""

    def __init__(self, device: torch.device, channels_last: bool):
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        self.format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std).contiguous(memory_format=self.format)


# ---------------------------------------------------------------- one epoch
def train_epoch(model, optimizer, steppers, data: DeviceData, normalize, batch_size, gen, autocast):
    """One pass over shuffled, augmented data; yields device tensors (loss sum, correct count) per step.
    `steppers` (lr schedule, Demon, ...) step after every optimizer step. Closure-based (LBFGS) and
    Hessian-based (AdaHessian, SophiaH) optimizers step through optim.optimizer_step. Nothing here waits
    for the device: the running sums stay device tensors (read once per epoch by the caller)."""
    model.train()
    loss_sum = torch.zeros((), device=data.x.device)
    correct = torch.zeros((), device=data.x.device, dtype=torch.long)
    order = torch.randperm(len(data), generator=gen, device=data.x.device)
    for start in range(0, len(data), batch_size):
        idx = order[start:start + batch_size]
        inputs, targets = normalize(augment(data.x[idx], gen)), data.y[idx]
        evaluations = 0

        def compute_gradients(create_graph: bool) -> torch.Tensor:
            nonlocal evaluations
            torch.compiler.cudagraph_mark_step_begin()  # a new forward (CUDA graphs of compile modes)
            with autocast():
                logits = model(inputs)
                loss = F.cross_entropy(logits, targets)
            if evaluations == 0:  # metrics at the step's starting weights (LBFGS evaluates several times)
                # Read the outputs before backward: a CUDA graph's outputs are reused by its next replay.
                loss_sum.add_(loss.detach().float() * len(idx))
                correct.add_((logits.argmax(1) == targets).sum())
            evaluations += 1
            loss.backward(create_graph=create_graph)
            return loss

        optimizer_step(optimizer, compute_gradients)
        for stepper in steppers:
            stepper.step()
        yield loss_sum, correct


def evaluate(model, data: DeviceData, normalize, batch_size, autocast):
    """Mean loss and accuracy on un-augmented data (the article re-augments its test set; we do not)."""
    model.eval()
    loss_sum = torch.zeros((), device=data.x.device)
    correct = torch.zeros((), device=data.x.device, dtype=torch.long)
    for start in range(0, len(data), batch_size):
        inputs, targets = normalize(data.x[start:start + batch_size]), data.y[start:start + batch_size]
        torch.compiler.cudagraph_mark_step_begin()
        with torch.no_grad(), autocast():  # not a decorator: mutmut (make mutation) skips decorated functions
            logits = model(inputs)
        loss_sum += F.cross_entropy(logits.float(), targets, reduction="sum")
        correct += (logits.argmax(1) == targets).sum()
    return loss_sum.item() / len(data), correct.item() / len(data)  # host sync: once per evaluation


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def rng_states(gen: torch.Generator) -> dict:
    states = {"gen": gen.get_state(), "torch": torch.get_rng_state(),
              "numpy": np.random.get_state(), "random": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict, gen: torch.Generator) -> None:
    gen.set_state(states["gen"])
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["random"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---------------------------------------------------------------- the run
def current_momentum(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's momentum (SGD-style `momentum`, else `betas[0]`: Adam's β1, Demon's
    decayed β); NaN for an optimizer with neither (Adagrad)."""
    group = optimizer.param_groups[0]
    if "momentum" in group:
        return float(group["momentum"])
    return float(group["betas"][0]) if "betas" in group else math.nan


def load_data(spec: dict, device: torch.device) -> tuple[DeviceData, DeviceData | None, DeviceData, int]:
    """(train, validation or None, test, classes). With spec["validation"] (a split file, optimbench.tune),
    the validation images are held out of the training set; train_subset applies to what remains."""
    arrays = data_mod.load_canonical(spec["data"])
    x_train, y_train, validation = arrays["x_train"], arrays["y_train"], None
    if spec.get("validation"):
        from optimbench.tune import read_split

        train_idx, val_idx = read_split(spec["validation"], spec["data"])
        validation = DeviceData(x_train[val_idx], y_train[val_idx], device)
        x_train, y_train = x_train[train_idx], y_train[train_idx]
    n_train, n_test = spec.get("train_subset"), spec.get("test_subset")
    train = DeviceData(x_train[:n_train], y_train[:n_train], device)
    test = DeviceData(arrays["x_test"][:n_test], arrays["y_test"][:n_test], device)
    return train, validation, test, len(arrays["classes"])


@dataclass
class Training:
    """Everything one run steps: the model, its optimizer and schedules, the augmentation generator."""

    model: torch.nn.Module
    forward: torch.nn.Module  # the model, or its torch.compile'd wrapper
    optimizer: torch.optim.Optimizer
    compile_mode: str | None
    steppers: list
    gen: torch.Generator
    normalize: Normalize
    autocast: object
    channels_last: bool
    bf16: bool
    reasons: dict = field(default_factory=dict)  # why channels_last and bf16 are on or off

    def state(self, epoch: int, rows: list, fingerprint: str) -> dict:
        return {"spec_hash": fingerprint, "epoch": epoch, "rows": rows, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "schedules": [s.state_dict() for s in self.steppers],
                "rng": rng_states(self.gen)}

    def load(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        for stepper, state in zip(self.steppers, ckpt["schedules"]):
            stepper.load_state_dict(state)
        restore_rng(ckpt["rng"], self.gen)


def build_training(spec: dict, device: torch.device, num_classes: int, total_steps: int) -> Training:
    """Seeded model (channels-last, bf16 autocast and compile as configured, `auto` resolved per device and
    CPU by `layout_and_precision`), optimizer and schedules."""
    seed_everything(spec["seed"])
    model = build_model(spec["model"], spec["width"], num_classes, spec.get("pretrained")).to(device)
    layout, precision = layout_and_precision(spec, device)
    channels_last, bf16 = layout.on, precision.on
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(spec["optimizer"], model.parameters())
    gen = torch.Generator(device=device)
    gen.manual_seed(spec["seed"])
    compile_setting = spec.get("compile", "auto")
    mode = compile_mode(compile_setting, device)
    if compile_setting == "auto" and step_kind(optimizer)[1]:
        mode = None  # Hessian-based optimizers differentiate the gradients: compiled graphs cannot (double backward)
    if mode and compile_setting == "auto":
        torch._dynamo.config.suppress_errors = True  # auto: a graph that fails to compile runs eagerly
    # dynamic=False: one static graph per batch shape (full, last partial, evaluation) for CUDA graphs.
    forward = torch.compile(model, mode=mode, dynamic=False) if mode else model
    return Training(model=model, forward=forward, optimizer=optimizer, compile_mode=mode,
                    steppers=schedules(spec["optimizer"], optimizer, spec.get("lr_schedule"), total_steps),
                    gen=gen, normalize=Normalize(device, channels_last),
                    autocast=lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16),
                    channels_last=channels_last, bf16=bf16,
                    reasons={"channels_last": layout.reason, "bf16": precision.reason})


class CheckpointError(RuntimeError):
    """A run's checkpoint cannot be read; the message names the file and how to start over."""


def read_checkpoint(ckpt_path: Path, device) -> dict:
    """The checkpoint's contents; a damaged file (truncated, not a checkpoint) raises CheckpointError.
    Never a silent restart: deleting the file is the user's decision (it discards the epochs done)."""
    way_out = (f"Delete it to restart this run from epoch 1 (rm {str(ckpt_path)!r}), or delete the run's "
               f"folder {str(ckpt_path.parent)!r}, then run again.")
    try:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
    except Exception as exc:  # torch.load's errors vary with the damage (zip reader, unpickling, EOF...)
        raise CheckpointError(f"checkpoint {ckpt_path} cannot be read ({describe_load_error(exc)}): the file "
                              f"is damaged, e.g. truncated by a full disk. {way_out}") from None
    missing = [k for k in ("spec_hash", "epoch") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {ckpt_path} is not one of this trainer's checkpoints "
                              f"(no {missing}). {way_out}")
    return ckpt


def resume(ckpt_path: Path, fingerprint: str, training: Training, device) -> tuple[list, int]:
    """Load the checkpoint of this same run, if any: (metric rows so far, epochs done)."""
    if not ckpt_path.exists():
        return [], 0
    ckpt = read_checkpoint(ckpt_path, device)
    if ckpt["spec_hash"] != fingerprint:
        print(f"ignoring {ckpt_path}: it belongs to another configuration", file=sys.stderr)
        return [], 0
    training.load(ckpt)
    print(f"resuming from {ckpt_path} after epoch {ckpt['epoch']}", file=sys.stderr)
    return ckpt["rows"], ckpt["epoch"]


def epoch_row(spec, training: Training, epoch: int, train_data, test_data, bar, validation=None) -> dict:
    """Train one epoch, evaluate on the validation split (if any) and, as spec["test"] says, on the test
    set (neither after a divergence); the epoch's metrics."""
    tic = time.perf_counter()
    for loss_sum, correct in train_epoch(training.forward, training.optimizer, training.steppers, train_data,
                                         training.normalize, spec["batch_size"], training.gen, training.autocast):
        bar.update(1)
    train_loss = loss_sum.item() / len(train_data)  # host sync: once per epoch
    train_acc = correct.item() / len(train_data)
    seconds = time.perf_counter() - tic
    diverged = not math.isfinite(train_loss)
    tic = time.perf_counter()
    # The test set: every epoch (the article's study), only after the last epoch (tuned final runs), or
    # never (tuning trials: the test set decides nothing).
    mode = spec.get("test", "every_epoch")
    on_test = mode == "every_epoch" or (mode == "final" and epoch == spec["epochs"])
    test_loss, test_acc = (math.nan, math.nan) if diverged or not on_test else evaluate(
        training.forward, test_data, training.normalize, spec["eval_batch_size"], training.autocast)
    val_loss, val_acc = (math.nan, math.nan) if diverged or validation is None else evaluate(
        training.forward, validation, training.normalize, spec["eval_batch_size"], training.autocast)
    return {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
            "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc,
            "lr": training.optimizer.param_groups[0]["lr"], "momentum": current_momentum(training.optimizer),
            "epoch_seconds": seconds,
            "eval_seconds": time.perf_counter() - tic, "samples_per_second": len(train_data) / seconds,
            "diverged": diverged}


def run(spec: dict, out_dir, threads: int = 1, save_model: bool = True) -> pd.DataFrame:
    """Train (or resume) the run described by `spec`; write metrics.csv, run.json and (unless save_model is
    False, e.g. for tuning trials) model.pt to out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = provenance.now()
    torch.set_num_threads(threads)  # bit-identity on the CPU depends on it: recorded in run.json
    device = resolve_device(spec.get("device", "auto"))
    torch.use_deterministic_algorithms(spec.get("deterministic", True) and device.type == "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train_data, validation, test_data, num_classes = load_data(spec, device)
    steps_per_epoch = math.ceil(len(train_data) / spec["batch_size"])
    training = build_training(spec, device, num_classes, spec["epochs"] * steps_per_epoch)
    # What `auto` resolved to belongs to the fingerprint: resuming on a CPU of another kind (a mixed cluster)
    # must not switch a run's precision or layout half-way.
    resolved = {"bf16": training.bf16, "channels_last": training.channels_last, "device": device.type}
    fingerprint, ckpt_path = spec_hash({**spec, "resolved": resolved}), out_dir / CHECKPOINT
    rows, start_epoch = resume(ckpt_path, fingerprint, training, device)
    startup_seconds = process_age()  # interpreter, imports, data load, model build: a fixed cost per run

    bar = tqdm(total=spec["epochs"] * steps_per_epoch, initial=start_epoch * steps_per_epoch, file=sys.stderr,
               desc=f"{spec.get('optimizer_name', '')} seed {spec['seed']}", unit="step",
               mininterval=0.5 if sys.stderr.isatty() else 10)
    for epoch in range(start_epoch + 1, spec["epochs"] + 1):
        if rows and rows[-1]["diverged"]:
            break
        rows.append(epoch_row(spec, training, epoch, train_data, test_data, bar, validation))
        bar.set_postfix(epoch=epoch, loss=f"{rows[-1]['train_loss']:.4f}", test_acc=f"{rows[-1]['test_acc']:.3f}")
        save_checkpoint(ckpt_path, training.state(epoch, rows, fingerprint))
    bar.close()
    diverged = bool(rows and rows[-1]["diverged"])
    if diverged:
        print(f"run diverged at epoch {rows[-1]['epoch']} (non-finite training loss); recorded", file=sys.stderr)

    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    if save_model:
        with atomic_path(out_dir / "model.pt") as tmp:
            torch.save({"model": training.model.state_dict(), "spec": spec, "epochs_completed": len(rows)}, tmp)
    write_json(out_dir / "run.json", {
        "spec": spec, "spec_hash": fingerprint, "versions": provenance.versions(),
        "device": str(device), "device_name": provenance.device_name(device), "threads": threads,
        "channels_last": training.channels_last, "channels_last_reason": training.reasons.get("channels_last"),
        "bf16": training.bf16, "bf16_reason": training.reasons.get("bf16"), "compile_mode": training.compile_mode,
        "cpu": hardware.cpu_summary(hardware.cpu_flags()),
        "parameters": count_parameters(training.model), "steps_per_epoch": steps_per_epoch,
        "train_images": len(train_data), "test_images": len(test_data),
        "resumed_after_epoch": start_epoch or None, "diverged": diverged, "startup_seconds": startup_seconds,
        "diverged_epoch": rows[-1]["epoch"] if diverged else None, "epochs_completed": len(rows),
        "git_commit": provenance.git_commit(), "started": started, "finished": provenance.now()})
    write_csv(out_dir / "metrics.csv", metrics)  # last: its presence marks a finished run
    ckpt_path.unlink(missing_ok=True)
    return metrics


# The trainer's --spec (config.yaml's train section resolved for one run, see config/schema.yaml).
SPEC_REQUIRED = {
    "data": "canonical .npz of the data set (prepare_data's --out)",
    "model": "resnet18_article | resnet18_cifar",
    "width": "channels of the first stage (64 = ResNet18)",
    "optimizer": "registry entry {class, kwargs, demon}, e.g. {\"class\": \"SGD\", \"kwargs\": {\"lr\": 0.01}}",
    "seed": "seeds torch, NumPy, random and the augmentation",
    "epochs": "training epochs",
    "batch_size": "training batch size (images)",
    "eval_batch_size": "evaluation batch size (images)",
}
SPEC_OPTIONAL = {
    "pretrained": "local .pth of torchvision's ImageNet resnet18 (resnet18_article, width 64); default null",
    "lr_schedule": "null | linear | cosine | warmup-cosine; default null",
    "validation": "a validation split file (optimbench.tune): its images are held out of training and "
                  "evaluated every epoch; default none",
    "test": "every_epoch | final | never: when the test set is evaluated; default every_epoch",
    "selected_trial": "the tuning trial whose setting this run uses (recorded)",
    "device": "auto | cpu | cuda; default auto",
    "channels_last": "auto | on | off; default auto",
    "bf16": "auto | on | off; default auto",
    "compile": "auto | off | on | reduce-overhead | max-autotune; default auto",
    "deterministic": "torch.use_deterministic_algorithms on the CPU; default true",
    "train_subset": "use the first N training images; default all",
    "test_subset": "use the first N test images; default all",
    "optimizer_name": "the optimizer's name in the config (progress bar)",
    "dataset": "the data set's name (recorded)",
}


def main(argv=None) -> None:
    from optimbench.cli import read_spec, spec_help

    parser = argparse.ArgumentParser(description="Train one model with one optimizer and one seed.",
                                     epilog=spec_help(SPEC_REQUIRED, SPEC_OPTIONAL),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the run's spec as inline JSON or a JSON/YAML file (keys below)")
    parser.add_argument("--out", required=True, help="run folder (metrics.csv, run.json, model.pt)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--execution", default="{}",
                        help='execution settings as JSON, e.g. {"compile": "off"}: how the run executes, never '
                             "what it computes (not part of the spec's fingerprint)")
    parser.add_argument("--selection", help="a tuning selection (JSON, optimbench.tune): its setting is "
                                            "merged into the spec's optimizer kwargs and schedule")
    parser.add_argument("--no-model", action="store_true", help="do not write model.pt (tuning trials)")
    args = parser.parse_args(argv)

    spec = read_spec(args.spec, SPEC_REQUIRED, SPEC_OPTIONAL)
    if args.selection:
        from optimbench.tune import apply_selection

        spec = apply_selection(spec, json.loads(Path(args.selection).read_text()))
    metrics = run({**spec, **json.loads(args.execution)}, args.out, args.threads, save_model=not args.no_model)
    last = metrics.iloc[-1]
    print(f"{len(metrics)} epochs: train_loss {last.train_loss:.4f}, test_acc {last.test_acc:.4f}, "
          f"diverged {bool(last.diverged)}")


if __name__ == "__main__":
    main()
