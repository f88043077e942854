"""What the CPU offers, and the trainer's `auto` choices of bf16 autocast and channels-last from it.

How the CPU is probed: its feature flags (`/proc/cpuinfo`), not a timing probe and not
`torch.backends.cpu.get_cpu_capability()`.
- The capability reads "AVX512" both on CPUs with native bf16 (avx512_bf16: AMD Zen 4, Intel Cooper
  Lake on) and on those without (Skylake/Cascade Lake Xeons, where oneDNN emulates bf16), so it cannot
  tell them apart; nor can `torch.ops.mkldnn._is_mkldnn_bf16_supported()`, true on any AVX512-BW CPU.
  torch 2.14.1 has no public query for avx512_bf16 or amx_bf16. The capability is recorded, not used.
- A measured probe would cost seconds per job (or a cache per machine), and on a loaded machine its
  verdict can flip from one job to the next: the same machine, seed and thread count would then train
  in different precisions. Flags are a pure function of the machine, so results stay deterministic.

The rules, and the measurements behind them (CIFAR ResNet18, batch 64, forward + backward + SGD step):
- bf16 on where the CPU computes bf16 natively: amx_bf16 (Intel Xeon, 2 threads: 1.35× at width 8,
  1.8-2.2× at width 64) or avx512_bf16 (AMD EPYC, 1 thread, channels-last: 1.28× for the bare step and
  1.6× through the trainer at width 8, 2.1× at width 64). Off elsewhere: emulated bf16 measured 8×
  slower on an AVX2-only AMD EPYC. Other architectures (ARM's bf16) are unmeasured and stay fp32;
  `bf16: on` forces it.
- channels-last from width 8 (torch 2.14.1's CPU backward crashed in channels-last at width 4), except
  on AMX CPUs below width 16: contiguous measured faster there at width 8 (fp32 774 vs 741 images/s,
  bf16 1,042 vs 857); channels-last faster at width 64 (53 vs 48, bf16 119 vs 88). On the EPYCs it was
  faster at width 8 (AVX2: 1,202 vs 727; AVX512-BF16, 1 thread: fp32 984 vs 746, bf16 1,255 vs 920).
- On CUDA both stay on (tensor-core bf16 and channels-last convolutions), as before.

What of the machine changes a run's numbers (`numerics`: part of a finished run's store key, optimbench.store):
- the CPU's vector ISA (torch's capability: DEFAULT, AVX2, AVX512; oneDNN and ATen pick kernels, and with
  them the order of a reduction's additions, by it) and, where bf16 is on, the native-bf16 instructions that
  compute it (amx_bf16 and avx512_bf16 are different kernels). Not the CPU's model or vendor: two CPUs of one
  ISA run the same kernels, so they share entries;
- on CUDA the GPU's model (its name, e.g. "NVIDIA H100 80GB HBM3", and compute capability): cuDNN's and
  cuBLAS's heuristics pick kernels by architecture and by the count of multiprocessors, which differs between
  models of one architecture (H100 PCIe and SXM), so the model, not only its architecture, keys a run; and
  the CUDA and cuDNN versions;
- the torch version, for every optimizer (its kernels, autocast's op lists, the default algorithms).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")
# Flags that mean native bf16 arithmetic, best first, with what was measured on such a CPU.
NATIVE_BF16 = {
    "amx_bf16": "AMX-BF16 tiles (measured 1.35-2.2x faster than fp32 on an Intel Xeon)",
    "avx512_bf16": "AVX512-BF16 dot products (measured 1.3-2.1x faster than fp32 on an AMD EPYC)",
}
CHANNELS_LAST_MIN_WIDTH = 8  # torch 2.14.1's CPU backward crashed (segmentation fault) in channels-last at width 4
AMX_CHANNELS_LAST_MIN_WIDTH = 16  # on AMX, contiguous measured faster at width 8 and channels-last at 64


def resolve_device(name: str) -> torch.device:
    """The device of a job whose train.device is `name` (auto: CUDA where visible, else the CPU).

    Raises:
        RuntimeError: cuda requested and no CUDA device visible.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device = 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def visible_device(name: str) -> torch.device | None:
    """resolve_device where this machine has that device, else None (cuda asked for on a machine without one:
    the machine that plans the study may not be the one that trains, a cluster's login node)."""
    try:
        return resolve_device(name)
    except RuntimeError:
        return None


@dataclass(frozen=True)
class Choice:
    """A resolved on/off setting and why (recorded in run.json)."""

    on: bool
    reason: str


@functools.cache
def cpu_flags(path: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags: the first `flags` (x86) or `Features` (ARM) line of /proc/cpuinfo,
    lower-cased; empty where that file is missing or unreadable (not Linux). Read once per process."""
    try:
        text = Path(path).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.lower().split())
    return frozenset()


def native_bf16(flags: frozenset[str]) -> str | None:
    """The best native-bf16 flag the CPU has (a key of NATIVE_BF16), or None."""
    return next((flag for flag in NATIVE_BF16 if flag in flags), None)


def cpu_summary(flags: frozenset[str]) -> dict:
    """What run.json records of the CPU: torch's vector capability and its native-bf16 flag."""
    return {"capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": native_bf16(flags)}


def numerics(device: torch.device, bf16: bool, flags: frozenset[str] | None = None) -> dict:
    """What of this machine and this torch changes a run's numbers (see the module's docstring): {"device",
    "torch", then "cpu_isa" and "bf16_kernel" on the CPU, or "gpu", "gpu_capability", "cuda", "cudnn" on
    CUDA}. `flags`: the CPU's (cpu_flags() when None)."""
    found = {"device": device.type, "torch": torch.__version__}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return {**found, "gpu": torch.cuda.get_device_name(device), "gpu_capability": f"{major}.{minor}",
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    flags = cpu_flags() if flags is None else flags
    return {**found, "cpu_isa": torch.backends.cpu.get_cpu_capability(),
            "bf16_kernel": (native_bf16(flags) or "emulated") if bf16 else None}


def _fixed(key: str, setting: str) -> Choice | None:
    """The choice a config's "on"/"off" fixes, or None for auto."""
    if setting == "auto":
        return None
    return Choice(setting == "on", f"train.{key} = '{setting}' in the config")


def choose_bf16(setting: str, device_type: str, flags: frozenset[str]) -> Choice:
    """bf16 autocast for `setting` (auto/on/off) on a device of `device_type` ("cpu", "cuda")."""
    fixed = _fixed("bf16", setting)
    if fixed:
        if fixed.on and device_type == "cpu" and not native_bf16(flags):
            return Choice(True, fixed.reason + "; this CPU has no native bf16 (emulated: expect it slower)")
        return fixed
    if device_type == "cuda":
        return Choice(True, "auto: CUDA (tensor-core bf16)")
    flag = native_bf16(flags)
    if flag:
        return Choice(True, f"auto: the CPU has {flag}: {NATIVE_BF16[flag]}")
    return Choice(False, "auto: the CPU has neither amx_bf16 nor avx512_bf16 (emulated bf16 measured up to "
                         "8x slower on an AVX2-only CPU)" if flags else
                         "auto: the CPU's flags are unknown (no /proc/cpuinfo): fp32")


def choose_channels_last(setting: str, device_type: str, width: int, flags: frozenset[str]) -> Choice:
    """Channels-last memory format for `setting` (auto/on/off), a model of `width`, on `device_type`."""
    fixed = _fixed("channels_last", setting)
    if fixed:
        return fixed
    if device_type == "cuda":
        return Choice(True, "auto: CUDA")
    if width < CHANNELS_LAST_MIN_WIDTH:
        return Choice(False, f"auto: width {width} < {CHANNELS_LAST_MIN_WIDTH} (channels-last backward crashed "
                             "on the CPU in torch 2.14.1)")
    if "amx_bf16" in flags and width < AMX_CHANNELS_LAST_MIN_WIDTH:
        return Choice(False, f"auto: AMX CPU, width {width} < {AMX_CHANNELS_LAST_MIN_WIDTH} (contiguous measured "
                             "faster there)")
    return Choice(True, f"auto: CPU, width {width} >= {CHANNELS_LAST_MIN_WIDTH} (channels-last measured faster)")
