import pytest
import torch

from gradual.accelerator import device_and_dtype, native_bf16_cpu, resolve_dtype, visible_gpus


def cpu_with(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, False, torch.bfloat16), (False, True, torch.bfloat16), (False, False, torch.float32)],
)
def test_auto_is_bfloat16_only_on_a_cpu_with_bf16_instructions(monkeypatch, avx512_bf16, amx, expected):
    cpu_with(monkeypatch, avx512_bf16, amx)
    assert device_and_dtype() == ("cpu", expected)
    assert device_and_dtype("float32") == ("cpu", torch.float32)
    assert device_and_dtype("bfloat16") == ("cpu", torch.bfloat16)


def test_a_torch_without_the_checks_counts_as_no_bf16(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert not native_bf16_cpu()
    assert resolve_dtype("auto", "cpu") == torch.float32


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_on_a_gpu_follows_its_bf16_support(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16 and not including_emulation
    )
    assert device_and_dtype() == ("cuda", expected)


def test_an_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("float16")


@pytest.mark.parametrize("listed, expected", [("0,1", ["0", "1"]), ("3", ["3"]), ("", [])])
def test_the_gpus_a_scheduler_gave_are_those_it_listed(monkeypatch, listed, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: pytest.fail("the listed GPUs are the answer"))
    assert visible_gpus() == expected


def test_without_a_list_every_gpu_cuda_counts_is_visible(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert visible_gpus() == ["0", "1"]
