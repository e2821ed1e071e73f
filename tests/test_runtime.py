"""The device and its precision: what runs where (no GPU needed)."""

import pytest
import torch

from jepa_lite import runtime


def test_devices():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.resolve_device("auto").type == expected
    assert runtime.resolve_device(None).type == expected
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        runtime.resolve_device("tpu")
    assert "CPU" in runtime.device_report(torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_says_what_to_do():
    with pytest.raises(RuntimeError, match="no GPU.*--device cpu"):
        runtime.resolve_device("cuda")
