"""Where the transformers model runs and in which dtype: one decision for generation and training.

`auto` is bfloat16 wherever the hardware computes it natively: a GPU that supports it, or a CPU
with AVX-512 BF16 or AMX (measured on such a CPU: a forward pass 1.6x, detection 2x faster than
float32). Elsewhere bfloat16 is emulated and slower than float32, so `auto` is float32 there.
"""

import os

import torch

DTYPES = ("auto", "float32", "bfloat16")
# torch's own checks of the CPU's bf16 instructions. `torch.backends.cpu.get_cpu_capability()`
# answers "AVX512" for AVX-512 with and without BF16, so it cannot tell them apart.
_CPU_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX), as torch detects them."""
    return any(getattr(torch.cpu, check, lambda: False)() for check in _CPU_BF16_CHECKS)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def visible_gpus() -> list[str]:
    """The GPUs this process was given: CUDA_VISIBLE_DEVICES where a scheduler set it (SLURM does for
    a job's GPUs), else every GPU CUDA counts. Recorded with a job's outputs, to show what it ran on."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu for gpu in listed.split(",") if gpu]
    return [str(index) for index in range(torch.cuda.device_count())]


def resolve_dtype(name: str = "auto", on: str | None = None) -> torch.dtype:
    """The torch dtype `name` (one of DTYPES) stands for on the device `on` (this machine's by default)."""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {name!r}")
    if name != "auto":
        return getattr(torch, name)
    if (on or device()) == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = native_bf16_cpu()
    return torch.bfloat16 if native else torch.float32


def device_and_dtype(dtype: str = "auto") -> tuple[str, torch.dtype]:
    where = device()
    return where, resolve_dtype(dtype, where)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
