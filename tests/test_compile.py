"""``--compile``: a compiled training step computes what the eager one does (on the CPU,
where CI runs it; the GPU speed-up is measured by ``jepa-lite bench --compile``)."""

import copy

import torch

from jepa_lite import masking, train
from jepa_lite.runtime import grad_scaler


def test_compiled_step_equals_the_eager_step():
    torch.manual_seed(0)
    cfg = train.TrainConfig(arch="resnet10", image_size=64, batch_size=4, compile=True)
    dev = torch.device("cpu")
    eager = train.build_model(cfg)
    compiled_model = copy.deepcopy(eager)
    net = train.maybe_compile(compiled_model, cfg.compile)
    assert net is not compiled_model and net._orig_mod is compiled_model
    losses = {}
    for name, model, runner in (("eager", eager, eager), ("compiled", compiled_model, net)):
        opt = train.make_optimizer(model, cfg, dev)
        images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        masks = masking.sample_masks(4, cfg.grid, generator=torch.Generator().manual_seed(2))
        losses[name] = [train.train_step(runner, opt, grad_scaler(dev, "fp32"),
                                         [(images, masks)], 1, dev, "fp32", 0.99)[0].item()
                        for _ in range(2)]
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
