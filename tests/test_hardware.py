"""The CPU probe and the auto choices of bf16 and channels-last per capability (the probe mocked)."""

import pytest
import torch

from optimbench import hardware

# Flags as /proc/cpuinfo lists them on each kind of CPU (abridged to what matters).
AMX = frozenset("avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8".split())  # Sapphire Rapids Xeon
AVX512_BF16 = frozenset("avx2 avx512f avx512bw avx512_bf16".split())  # AMD EPYC Zen 4 (this machine)
AVX512 = frozenset("avx2 avx512f avx512bw avx512vl".split())  # Cascade Lake Xeon: bf16 only emulated
AVX2 = frozenset("sse4_2 avx avx2 fma".split())  # AMD EPYC Zen 2/3
UNKNOWN = frozenset()  # no /proc/cpuinfo (macOS, Windows)

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme avx2 AVX512F avx512_bf16 avx512_vnni
bugs\t\t: sysret_ss_attrs

processor\t: 1
flags\t\t: fpu only-the-first-line-counts
"""
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize("text, expected", [
    (X86_CPUINFO, {"fpu", "vme", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}),
    (ARM_CPUINFO, {"fp", "asimd", "sve", "bf16", "i8mm"}),
    ("processor\t: 0\n", set()),
], ids=["x86", "arm", "no-flags-line"])
def test_cpu_flags_are_the_first_flags_line_of_cpuinfo(tmp_path, text, expected):
    (tmp_path / "cpuinfo").write_text(text)
    assert hardware.cpu_flags(tmp_path / "cpuinfo") == expected


def test_cpu_flags_are_empty_without_cpuinfo(tmp_path):
    assert hardware.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("flags, expected", [
    (AMX, "amx_bf16"), (AVX512_BF16, "avx512_bf16"), (AVX512, None), (AVX2, None), (UNKNOWN, None),
    (frozenset({"bf16", "asimd"}), None)], ids=["AMX", "AVX512-BF16", "AVX512", "AVX2", "unknown", "ARM"])
def test_native_bf16_is_the_best_native_flag(flags, expected):
    assert hardware.native_bf16(flags) == expected


# bf16 auto: on where the CPU computes bf16 natively (AMX, AVX512-BF16) and on CUDA; off elsewhere.
@pytest.mark.parametrize("device, flags, on, reason_has", [
    ("cpu", AMX, True, "amx_bf16"),
    ("cpu", AVX512_BF16, True, "avx512_bf16"),
    ("cpu", AVX512, False, "neither amx_bf16 nor avx512_bf16"),
    ("cpu", AVX2, False, "neither amx_bf16 nor avx512_bf16"),
    ("cpu", UNKNOWN, False, "flags are unknown"),
    ("cuda", UNKNOWN, True, "CUDA"),
    ("cuda", AVX2, True, "CUDA"),  # the host CPU does not matter on CUDA
], ids=["AMX", "AVX512-BF16", "AVX512", "AVX2", "unknown", "CUDA", "CUDA-on-AVX2-host"])
def test_bf16_auto_follows_the_capability(device, flags, on, reason_has):
    choice = hardware.choose_bf16("auto", device, flags)
    assert choice.on is on and reason_has in choice.reason and choice.reason.startswith("auto")


@pytest.mark.parametrize("setting, flags, on, reason_has", [
    ("off", AMX, False, "train.bf16 = 'off' in the config"),
    ("on", AVX512_BF16, True, "train.bf16 = 'on' in the config"),
    ("on", AVX2, True, "no native bf16"),  # forced where emulated: the reason warns
])
def test_bf16_on_and_off_override_the_capability(setting, flags, on, reason_has):
    choice = hardware.choose_bf16(setting, "cpu", flags)
    assert choice.on is on and reason_has in choice.reason


# channels_last auto: on CUDA; on the CPU from width 8, but contiguous below width 16 on AMX CPUs.
@pytest.mark.parametrize("device, flags, width, on", [
    ("cpu", AMX, 8, False), ("cpu", AMX, 16, True), ("cpu", AMX, 64, True),
    ("cpu", AVX512_BF16, 8, True), ("cpu", AVX512, 8, True), ("cpu", AVX2, 8, True), ("cpu", UNKNOWN, 64, True),
    ("cpu", AVX512_BF16, 4, False), ("cpu", AVX2, 7, False), ("cpu", AMX, 4, False),
    ("cuda", AMX, 8, True), ("cuda", UNKNOWN, 4, True),
])
def test_channels_last_auto_follows_the_capability_and_width(device, flags, width, on):
    assert hardware.choose_channels_last("auto", device, width, flags).on is on


@pytest.mark.parametrize("setting, on", [("on", True), ("off", False)])
def test_channels_last_on_and_off_override(setting, on):
    for flags in (AMX, AVX2):
        choice = hardware.choose_channels_last(setting, "cpu", 8, flags)
        assert choice.on is on and choice.reason == f"train.channels_last = '{setting}' in the config"


def test_cpu_summary_names_the_capability_and_the_native_flag(monkeypatch):
    monkeypatch.setattr(hardware.torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert hardware.cpu_summary(AVX512_BF16) == {"capability": "AVX512", "native_bf16": "avx512_bf16"}
    assert hardware.cpu_summary(AVX2) == {"capability": "AVX512", "native_bf16": None}


def test_numerics_holds_what_of_the_machine_changes_a_runs_numbers(monkeypatch):
    """Issue 37.1: the run store's key held the literal "auto"; now the job's resolved machine is in it: the CPU's
    ISA and, with bf16 on, the instructions computing it; on CUDA the GPU model and the CUDA/cuDNN versions."""
    cpu, isa = torch.device("cpu"), torch.backends.cpu.get_cpu_capability()
    amx = frozenset({"avx512f", "avx512_bf16", "amx_bf16"})
    assert hardware.numerics(cpu, True, amx) == {"device": "cpu", "torch": torch.__version__, "cpu_isa": isa,
                                                 "bf16_kernel": "amx_bf16"}
    assert hardware.numerics(cpu, True, frozenset({"avx2"}))["bf16_kernel"] == "emulated"
    # bf16 off: the flags decide nothing (the same fp32 kernels), so two such CPUs resolve alike
    assert hardware.numerics(cpu, False, amx) == hardware.numerics(cpu, False, frozenset({"avx2"}))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)
    gpu = hardware.numerics(torch.device("cuda"), True)
    assert gpu == {"device": "cuda", "torch": torch.__version__, "gpu": "NVIDIA H100 80GB HBM3",
                   "gpu_capability": "9.0", "cuda": torch.version.cuda, "cudnn": 91002}
