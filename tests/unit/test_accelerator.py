import torch

from gradual.accelerator import device_and_dtype


def test_cpu_runs_float32_for_repeatable_greedy_outputs(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_and_dtype() == ("cpu", torch.float32)


def test_gpu_runs_bfloat16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_and_dtype() == ("cuda", torch.bfloat16)
