"""Where the transformers model runs: one decision for generation and training."""

import torch


def device_and_dtype() -> tuple[str, torch.dtype]:
    """bf16 on a GPU, as the paper trains; float32 on the CPU, where bf16 is slow and greedy outputs must repeat."""
    return ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
