"""``--compile``: a compiled training step computes what the eager one does (on the CPU,
where CI runs it; the GPU speed-up is measured by ``jepa-lite bench --compile``)."""

import pytest
import torch

from jepa_lite import masking, train
from jepa_lite.config import TrainConfig


@pytest.mark.slow  # compiling takes about 17 s on 2 cores
def test_compiled_step_equals_the_eager_step():
    cfg = TrainConfig(arch="resnet10", image_size=64, batch_size=4)
    dev = torch.device("cpu")
    eager_run = train.build(cfg, dev)
    compiled_run = train.build(cfg.with_changes(compile=True), dev)  # the same seed
    eager, compiled_model, net = eager_run.model, compiled_run.model, compiled_run.net
    assert net is not compiled_model and net._orig_mod is compiled_model
    assert all(torch.equal(a, b) for a, b in zip(eager.state_dict().values(),
                                                 compiled_model.state_dict().values()))
    losses = {}
    images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    masks = masking.sample_masks(4, masking.grid_of(64, cfg.arch),
                                 generator=torch.Generator().manual_seed(2))
    batch = {"images": images, "mask": masks}
    for name, run in (("eager", eager_run), ("compiled", compiled_run)):
        losses[name] = [train.train_step(run, [batch], 1, 0.99)[0].item() for _ in range(2)]
    assert torch.allclose(torch.tensor(losses["eager"]), torch.tensor(losses["compiled"]),
                          rtol=1e-4), losses
    assert losses["eager"][0] != losses["eager"][1]  # the step changed the weights
    # the gradients of one more forward pass, tensor by tensor (the weights themselves are
    # not compared: AdamW's first steps are about lr x sign(gradient), so a rounding
    # difference in a near-zero gradient becomes a weight difference of up to 2 x lr)
    grads = {}
    for name, model, runner in (("eager", eager, eager), ("compiled", compiled_model, net)):
        compiled_model.load_state_dict(eager.state_dict())
        model.zero_grad()
        loss, _ = runner(images, masks)
        loss.backward()
        grads[name] = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert grads["eager"].keys() == grads["compiled"].keys() and grads["eager"]
    for k, a in grads["eager"].items():
        b = grads["compiled"][k]
        assert (a - b).norm() <= 1e-4 * a.norm() + 1e-8, k
