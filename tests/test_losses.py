"""Every method's loss, against a direct computation and against lightly (issue 9)."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from lightly.loss import NegativeCosineSimilarity, NTXentLoss, VICRegLoss

from jepa_lite import losses

DRAWS = range(20)


def draw(seed, n=None, d=None):
    g = torch.Generator().manual_seed(seed)
    n = n or int(torch.randint(2, 17, (1,), generator=g))
    d = d or int(torch.randint(2, 33, (1,), generator=g))
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * 3,
            torch.randn(n, d, generator=g, dtype=torch.float64) * 3)


@pytest.mark.parametrize("seed", DRAWS)
def test_vicreg_terms_against_direct_computation(seed):
    a, b = draw(seed)
    n, d = a.shape
    t = losses.vicreg_terms(a, b)
    inv = sum((a[i, j] - b[i, j]) ** 2 for i in range(n) for j in range(d)) / (n * d)

    def var(z):
        out = 0.0
        for j in range(d):
            m = sum(z[i, j] for i in range(n)) / n
            std = (sum((z[i, j] - m) ** 2 for i in range(n)) / (n - 1) + 1e-4) ** 0.5
            out += max(0.0, 1 - float(std))
        return out / d

    def cov(z):
        m = z.mean(0)
        out = 0.0
        for j, k in itertools.permutations(range(d), 2):
            c = sum((z[i, j] - m[j]) * (z[i, k] - m[k]) for i in range(n)) / (n - 1)
            out += float(c) ** 2
        return out / d

    assert float(t["invariance"]) == pytest.approx(float(inv), rel=1e-9)
    assert float(t["variance"]) == pytest.approx(0.5 * (var(a) + var(b)), rel=1e-9, abs=1e-12)
    assert float(t["covariance"]) == pytest.approx(cov(a) + cov(b), rel=1e-9)


@pytest.mark.parametrize("seed", DRAWS)
def test_losses_match_lightly(seed):
    a, b = (z.float() for z in draw(seed))
    ours = losses.vicreg_loss(a, b, (25.0, 25.0, 1.0))
    assert ours == pytest.approx(float(VICRegLoss()(a, b)), rel=1e-5)
    assert losses.nt_xent(a, b, 0.1) == pytest.approx(
        float(NTXentLoss(temperature=0.1)(a, b)), rel=1e-5)
    assert losses.negative_cosine(a, b) == pytest.approx(
        float(NegativeCosineSimilarity()(a, b)), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("seed", DRAWS)
def test_nt_xent_is_symmetric_and_lowest_when_views_agree(seed):
    a, b = draw(seed)
    assert losses.nt_xent(a, b) == pytest.approx(float(losses.nt_xent(b, a)), rel=1e-12)
    agree = losses.nt_xent(a, a)
    # every other pairing of the same vectors, and noisy partners, score worse
    perm = torch.roll(torch.arange(len(a)), 1)
    assert agree < losses.nt_xent(a, a[perm])
    noise = torch.randn(a.shape, generator=torch.Generator().manual_seed(seed), dtype=a.dtype)
    assert agree < losses.nt_xent(a, a + 0.5 * a.std() * noise)
    # and the value is the textbook one: -log softmax of the partner among the 2N - 1 others
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = (z @ z.T / 0.1).fill_diagonal_(-torch.inf)
    n = len(a)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    assert losses.nt_xent(a, b, 0.1) == pytest.approx(float(F.cross_entropy(sim, partner)),
                                                      rel=1e-10)


@pytest.mark.parametrize("seed", DRAWS)
def test_covariance_from_the_gram_matrix_equals_the_covariance_matrix(seed):
    """Value and gradient, for micro-batches smaller and larger than the width, including
    features collapsed onto a few directions (where the subtraction loses the most)."""
    g = torch.Generator().manual_seed(seed)
    n, d = (int(v) for v in torch.randint(2, 40, (2,), generator=g))
    rank = int(torch.randint(1, min(n, d) + 1, (1,), generator=g))
    z = (torch.randn(n, rank, generator=g, dtype=torch.float64)
         @ torch.randn(rank, d, generator=g, dtype=torch.float64)).requires_grad_()

    def by_matrix(z):
        c = z - z.mean(0)
        cov = c.T @ c / (n - 1)
        return (cov - torch.diag(torch.diagonal(cov))).square().sum() / d

    want, (want_grad,) = by_matrix(z), torch.autograd.grad(by_matrix(z), z)
    got = losses.covariance(z)
    (got_grad,) = torch.autograd.grad(got, z)
    assert got.item() == pytest.approx(want.item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(got_grad, want_grad, rtol=1e-9, atol=1e-12)
    assert (losses.covariance_by_gram(z - z.mean(0)) / d).item() == pytest.approx(
        want.item(), rel=1e-9, abs=1e-12)  # also where covariance() takes the matrix


def test_covariance_in_float32_at_a_projectors_width():
    """VICReg's shape (32 images, 2048 wide): float32 within 1e-5 of float64."""
    z = torch.randn(32, 2048, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = z @ torch.randn(2048, 2048, generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64) / 45
    assert float(losses.covariance(z.float())) == pytest.approx(float(losses.covariance(z)),
                                                                rel=1e-5)


def test_variance_hinge_is_zero_for_spread_features_and_one_for_collapsed():
    torch.manual_seed(0)
    z = torch.randn(256, 8, dtype=torch.float64) * 5
    assert losses.variance(z) == 0
    assert losses.variance(torch.ones(16, 8)) == pytest.approx(1 - 1e-2, rel=1e-6)
    assert losses.covariance(torch.randn(4096, 4, dtype=torch.float64)) < 0.01
    x = torch.randn(64, 1)
    assert losses.covariance(torch.cat([x, x], 1)) > 0.5  # two identical dimensions


def test_negative_cosine_ignores_scale_and_is_minus_one_when_aligned():
    a, _ = draw(3)
    assert losses.negative_cosine(a, 7 * a) == pytest.approx(-1.0)
    assert losses.negative_cosine(a, -a) == pytest.approx(1.0)


@pytest.mark.parametrize("loss", [losses.nt_xent, losses.vicreg_loss, losses.negative_cosine])
def test_losses_are_computed_in_float32_inside_bf16_autocast(loss):
    a, b = (z.float() for z in draw(11, n=32, d=64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = loss(a, b)
    assert inside.dtype == torch.float32
    assert inside == loss(a, b)  # bit for bit: no bf16 matmul anywhere
