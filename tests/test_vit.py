"""I-JEPA's ViT (``jepa_lite.encoders.vit``): the context encoder that runs on the kept tokens
only equals the full encoder with attention restricted to those tokens (values and
gradients, float64, over many random draws); nothing of a dropped patch reaches it; the
positions, initialisation and sizes are the official ones."""

import pytest
import torch

from jepa_lite.encoders.vit import SIZES, ViT, gather_tokens, positions


def restricted(vit: ViT, images: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Every token through every block, each attending to the kept tokens only (an additive
    -inf mask on the other keys), then the kept tokens' outputs: the reference the
    token-dropping forward must equal."""
    x, _ = vit.tokens(images)
    b, n, _ = x.shape
    kept = torch.zeros(b, n, dtype=torch.bool).scatter_(1, keep, True)
    mask = torch.zeros(b, n, n, dtype=x.dtype).masked_fill(~kept[:, None, :], float("-inf"))
    mask = mask.repeat_interleave(vit.heads, 0)  # [B * heads, N, N], as MultiheadAttention
    for block in vit.blocks:
        y = block.ln_1(x)
        y, _ = block.self_attention(y, y, y, attn_mask=mask, need_weights=False)
        x = x + block.dropout(y)
        x = x + block.mlp(block.ln_2(x))
    return gather_tokens(vit.norm(x), keep)


def random_keep(g: torch.Generator, b: int, n: int) -> torch.Tensor:
    k = int(torch.randint(1, n + 1, (1,), generator=g))
    return torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(b)])


@pytest.mark.parametrize("seed", range(8))
def test_dropping_tokens_equals_attention_restricted_to_them(seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    vit = ViT("vit_micro").double()
    h, w = [int(v) for v in torch.randint(1, 5, (2,), generator=g)]
    images = torch.randn(3, 3, 16 * h, 16 * w, generator=g, dtype=torch.float64)
    keep = random_keep(g, 3, h * w)
    weights = torch.randn(3, keep.shape[1], vit.dim, generator=g, dtype=torch.float64)
    outputs, grads = [], []
    for forward in (lambda x: vit(x, keep), lambda x: restricted(vit, x, keep)):
        x = images.clone().requires_grad_(True)
        vit.zero_grad()
        out = forward(x)
        (out * weights).sum().backward()
        outputs.append(out.detach())
        grads.append([x.grad, *(p.grad.clone() for p in vit.parameters())])
    assert outputs[0].shape == (3, keep.shape[1], vit.dim)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-10, atol=1e-10)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_nothing_of_a_dropped_patch_reaches_the_context(seed):
    """Chapter 02's leak test on the ViT: repaint every dropped patch and the kept tokens'
    outputs do not move, not by a bit; repaint a kept patch and they do."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    vit = ViT("vit_micro").eval()
    images = torch.randn(2, 3, 64, 64, generator=g)
    keep = torch.stack([torch.randperm(16, generator=g)[:8] for _ in range(2)])
    cells = torch.zeros(2, 16, dtype=torch.bool).scatter_(1, keep, True).view(2, 1, 4, 4)
    hidden = ~cells.repeat_interleave(16, 2).repeat_interleave(16, 3)
    altered = torch.where(hidden, torch.randn(images.shape, generator=g), images)
    with torch.no_grad():
        assert torch.equal(vit(images, keep), vit(altered, keep))
        assert not torch.equal(vit(images, keep), vit(images + ~hidden * 0.1, keep))


def test_positions_encode_column_then_row():
    """[code] get_2d_sincos_pos_embed: the first half of a token's embedding depends on its
    column only, the second on its row only, each sines then cosines."""
    dim, (h, w) = 16, (3, 5)
    pos = positions(dim, (h, w), torch.zeros((), dtype=torch.float64)).view(h, w, dim)
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    for r in range(h):
        for c in range(w):
            want = torch.cat([torch.sin(c * omega), torch.cos(c * omega),
                              torch.sin(r * omega), torch.cos(r * omega)])
            torch.testing.assert_close(pos[r, c], want)
    assert len({tuple(v.tolist()) for v in pos.view(-1, dim)}) == h * w  # all distinct


def test_sizes_initialisation_and_pooling():
    vit = ViT("vit_small")
    d, depth = SIZES["vit_small"][:2]
    per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (8 * d * d + 5 * d)
    embed, norm = 3 * 256 * d + d, 2 * d
    assert sum(p.numel() for p in vit.parameters()) == embed + depth * per_block + norm
    assert (vit.dim, vit.patch) == (384, 16)
    # [code] fix_init_weight: each block's output projections shrink with its depth
    stds = [b.self_attention.out_proj.weight.std().item() for b in vit.blocks]
    assert 0.02 / 2 ** 0.5 * 0.9 < stds[0] < 0.02 / 2 ** 0.5 * 1.1
    assert stds[0] / stds[-1] == pytest.approx(12 ** 0.5, rel=0.1)  # sqrt(2 * 12 / 2)
    tokens = vit(torch.randn(2, 3, 32, 48))
    assert tokens.shape == (2, 6, 384) and vit.pool(tokens).shape == (2, 384)
    with pytest.raises(ValueError, match=r"takes \[B, N, 384\] tokens"):
        vit.pool(torch.randn(2, 384, 2, 3))  # a grid, as a CNN's
