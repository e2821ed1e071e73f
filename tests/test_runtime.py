"""The device and its precision: what runs where (no GPU needed)."""

import subprocess
import sys
import textwrap

import pytest
import torch

from jepa_lite import runtime
from jepa_lite.data import scenes
from jepa_lite.errors import UsageError


@pytest.mark.parametrize("gpu", [True, False])
def test_devices(monkeypatch, gpu):
    """``auto`` follows what torch sees, on any machine (the GPU is mocked either way)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device("auto").type == ("cuda" if gpu else "cpu")
    assert runtime.resolve_device(None).type == ("cuda" if gpu else "cpu")
    if gpu:
        assert runtime.resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        runtime.resolve_device("tpu")
    assert "CPU" in runtime.device_report(torch.device("cpu"))


def test_cuda_without_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="no GPU.*--device cpu"):
        runtime.resolve_device("cuda")


# --------------------------------------------------------------------------- the policy
@pytest.mark.parametrize("capability,expected", [
    ((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((8, 6), "bf16"), ((9, 0), "bf16")])
def test_precision_follows_the_compute_capability(monkeypatch, capability, expected):
    """A T4 (7.5) says is_bf16_supported() is True (emulation counts); it still gets fp16."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.resolve_precision(torch.device("cuda")) == expected
    assert runtime.resolve_precision(torch.device("cuda", 1)) == expected


def test_precision_on_cpu_and_when_asked():
    cpu = torch.device("cpu")
    assert runtime.resolve_precision(cpu) == "fp32"
    for p in ("fp32", "bf16", "fp16"):
        assert runtime.resolve_precision(cpu, p) == p
        assert runtime.grad_scaler(cpu, p).is_enabled() == (p == "fp16")
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of auto, fp32"):
        runtime.resolve_precision(cpu, "fp8")


# --------------------------------------------------------------------------- the same code on CPU
def make_step(seed=0, arch="resnet10"):
    from jepa_lite import train

    torch.manual_seed(seed)
    cfg = train.TrainConfig(arch=arch, image_size=64).with_changes(predictor_layers=1)
    model = train.build_model(cfg)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(6, 3, 64, 96, generator=g)
    from jepa_lite.masking import sample_masks

    masks = sample_masks(6, (2, 3), "random", generator=g)
    return cfg, model, images, masks


def run_step(precision, seed=0, channels_last=False, **scaler_kw):
    from jepa_lite import train

    cfg, model, images, masks = make_step(seed)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    cpu = torch.device("cpu")
    opt = train.make_optimizer(model, cfg, cpu)
    scaler = torch.amp.GradScaler("cpu", enabled=precision == "fp16", **scaler_kw)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = train.Run(cfg, cpu, precision, model, model, opt, scaler)
    maps = []  # the target encoder's output, in autocast's dtype
    hook = model.target_encoder.register_forward_hook(lambda m, i, out: maps.append(out))
    loss, _ = train.train_step(run, [{"images": images, "mask": masks}], 1, 0.99)
    hook.remove()
    return loss, maps[0], model, before, scaler


def test_bf16_training_step_on_cpu_is_finite_and_close_to_fp32():
    loss32, *_ = run_step("fp32")
    loss16, target, model, before, _ = run_step("bf16")
    assert target.dtype == torch.bfloat16  # autocast really ran
    assert torch.isfinite(loss16) and abs(loss16.item() - loss32.item()) < 0.01 * loss32.item()
    moved = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "context_encoder.conv1.weight" in moved and "mask_token.token" in moved
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_sparse_guarantees_hold_under_bf16_autocast():
    from jepa_lite.course import analysis
    from jepa_lite.masking import stage_masks

    _, model, images, masks = make_step(3)
    enc = model.context_encoder.train()
    hidden = masks.repeat_interleave(32, 1).repeat_interleave(32, 2).unsqueeze(1)
    altered = torch.where(hidden, torch.randn_like(images) * 50 + 7, images)
    state = {k: v.clone() for k, v in enc.state_dict().items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = analysis.stage_outputs(enc, images, masks)
        enc.load_state_dict(state)
        again = analysis.stage_outputs(enc, altered, masks)
    strides = {"conv1": 2, "bn1": 2, "relu": 2, "maxpool": 4, "layer1": 4, "layer2": 8,
               "layer3": 16, "layer4": 32}
    per_stage = stage_masks(masks)
    for name, out in outs.items():
        assert out.dtype == torch.bfloat16 or name in ("bn1", "relu", "maxpool"), name
        cut = per_stage[strides[name]].unsqueeze(1).expand_as(out)
        assert out[cut].abs().max() == 0, name  # masked cells exactly zero
        assert torch.equal(out, again[name]), name  # masked pixels change nothing


def test_fp16_with_grad_scaler_on_cpu():
    loss, _, model, before, scaler = run_step("fp16")
    assert scaler.is_enabled() and torch.isfinite(loss)
    assert not torch.equal(model.state_dict()["context_encoder.conv1.weight"],
                           before["context_encoder.conv1.weight"])
    # a scale so large that the fp16 gradients overflow: the step is skipped, the scale halves
    loss, _, model, before, scaler = run_step("fp16", init_scale=2.0**40)
    assert torch.isfinite(loss) and scaler.get_scale() == 2.0**39
    for k in ("context_encoder.conv1.weight", "predictor.0.weight", "mask_token.token"):
        assert torch.equal(model.state_dict()[k], before[k]), k


def test_channels_last_equals_contiguous_on_cpu():
    """The same loss, target features and gradients to float rounding (convolutions sum in
    another order). Compared before the optimizer: AdamW's first step is lr * sign(gradient),
    which turns a rounding difference in a near-zero gradient into a difference of 2 * lr."""
    results = []
    for channels_last in (False, True):
        _, model, images, masks = make_step(5)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        loss, _ = model(images, masks)
        target = model.target_encoder(images)
        loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss, target, grads))
    (a_loss, a_target, a_grads), (b_loss, b_target, b_grads) = results
    assert b_target.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(a_loss, b_loss, rtol=1e-6)
    assert torch.allclose(a_target, b_target, rtol=0, atol=1e-4 * a_target.abs().max())
    assert a_grads.keys() == b_grads.keys() and len(a_grads) > 40
    for n in a_grads:  # (the predictor's conv biases, before a BatchNorm, have a true gradient
        scale = a_grads[n].abs().max()  # of 0: only rounding noise of ~1e-9 is left there)
        assert torch.allclose(a_grads[n], b_grads[n], rtol=0, atol=1e-5 * scale + 1e-7), n


def test_gpu_settings_are_made_for_a_gpu_and_run_on_a_cpu(tmp_path, monkeypatch):
    """Fused AdamW, cudnn.benchmark, pinned memory and persistent prefetching workers, asked
    for with a GPU device; the fused AdamW step itself runs on the CPU too."""
    from jepa_lite import distributed, train
    from jepa_lite.data import folders

    cfg, model, images, masks = make_step(2)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert train.make_optimizer(model, cfg, cuda).defaults["fused"] is True
    assert not train.make_optimizer(model, cfg, cpu).defaults["fused"]
    fused = train.make_optimizer(model, cfg, cuda)  # CPU parameters: torch's fused CPU kernel
    loss, _ = model(images, masks)
    loss.backward()
    before = model.mask_token.token.detach().clone()
    fused.step()
    assert not torch.equal(before, model.mask_token.token)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    train.tune(cpu)
    assert torch.backends.cudnn.benchmark is False
    train.tune(cuda)
    assert torch.backends.cudnn.benchmark is True
    root = scenes.make_synthetic(tmp_path / "d", scenes.SyntheticSpec(classes=2, per_class=4,
                                                                   val_per_class=2))
    folder = folders.image_folder(root, "train")
    sampler = distributed.MicroBatchSampler(folder, 4, 2, seed=0)
    for workers, device in ((2, cuda), (0, cpu)):
        loader = train.make_loader(folder, sampler, cfg.with_changes(workers=workers), device)
        assert loader.pin_memory is (device.type == "cuda")
        assert loader.persistent_workers is (workers > 0)
        assert loader.prefetch_factor == (4 if workers else None)


def test_device_name_records_the_gpu_and_the_processes(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA A100-SXM4-80GB")
    assert runtime.device_name(torch.device("cuda", 1), 4) == "4 x NVIDIA A100-SXM4-80GB"
    assert runtime.device_name(torch.device("cuda")) == "NVIDIA A100-SXM4-80GB"
    assert runtime.device_name(torch.device("cpu")) == "cpu"


def test_the_heap_is_frozen_once_at_exit():
    """``jepa-lite`` and every chapter's kernel skip the last walk of the heap: one exit
    handler, however often asked for, that freezes it."""
    child = textwrap.dedent("""
        import atexit, gc
        from jepa_lite import runtime
        atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
        before = atexit._ncallbacks()
        runtime.skip_final_collection()
        runtime.skip_final_collection()
        print("handlers added:", atexit._ncallbacks() - before)
        print("frozen now:", gc.get_freeze_count() > 0)
    """)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == "handlers added: 1 frozen now: False frozen at exit: True".split()
