"""What a chapter writes out by hand is what the package runs, how a chapter is laid out
(issue 23), and every exercise's solution runs (issue 31).

Chapter 04's twenty-line JEPA step (the cell tagged ``jepa-step``) is executed as the chapter
defines it and compared with ``train.train_step`` on the same model, images and masks: the
same loss, the same gradient for every parameter, the same weights after AdamW and the EMA.
"""

import re
import textwrap
from pathlib import Path

import jupytext
import pytest
import torch
import torch.nn.functional as F

from jepa_lite import masking, methods, train
from jepa_lite.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def tagged_cell(chapter: str, tag: str) -> str:
    nb = jupytext.read(REPO / "notebooks" / f"{chapter}.py")
    cells = [c.source for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{chapter} must have one cell tagged {tag}"
    return cells[0]


def chapter_jepa_step():
    scope = {"torch": torch, "F": F}
    exec(tagged_cell("04_pretraining", "jepa-step"), scope)
    return scope["jepa_step"]


def assert_same_gradients_and_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """The same parameters, gradients (or none) and weights, parameter by parameter."""
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("seed,strategy,momentum", [(0, "multiblock", 0.99), (1, "random", 0.996),
                                                     (2, "mixed", 0.9), (3, "multiblock", 0.5)])
def test_the_chapters_step_by_hand_is_train_step(seed, strategy, momentum):
    jepa_step = chapter_jepa_step()
    cfg = TrainConfig().with_changes(arch="resnet10", image_size=128, predictor_layers=2,
                                     seed=seed, precision="fp32", compile=False)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(6, 3, 128, 128, generator=g)
    mask = masking.sample_masks(6, (4, 4), strategy, g)
    cpu = torch.device("cpu")
    by_hand, by_loop = train.build(cfg, cpu), train.build(cfg, cpu)
    for _ in range(2):  # two steps: the second starts from the EMA'd target and AdamW's state
        a = jepa_step(by_hand.model, by_hand.optimizer, images, mask, momentum)
        b, _ = train.train_step(by_loop, [{"images": images, "mask": mask}], 1, momentum)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
        assert_same_gradients_and_weights(by_hand.model, by_loop.model)
    moved = [not torch.equal(p, q) for p, q in zip(by_hand.model.target_encoder.parameters(),
                                                   train.build(cfg, cpu).model.target_encoder
                                                   .parameters())]
    assert any(moved)  # the EMA did move the target: the comparison above is not vacuous


def test_a_wrong_step_is_caught():
    """The comparison can fail: a step without the EMA differs from train_step's."""
    scope = {"torch": torch, "F": F}
    exec(tagged_cell("04_pretraining", "jepa-step").replace("xi.lerp_(theta, 1 - momentum)",
                                                            "pass"), scope)
    cfg = TrainConfig().with_changes(arch="resnet10", image_size=64, predictor_layers=1,
                                     precision="fp32", compile=False)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 64, 64, generator=g)
    mask = masking.sample_masks(4, (2, 2), "random", g)
    cpu = torch.device("cpu")
    by_hand, by_loop = train.build(cfg, cpu), train.build(cfg, cpu)
    scope["jepa_step"](by_hand.model, by_hand.optimizer, images, mask, 0.5)
    train.train_step(by_loop, [{"images": images, "mask": mask}], 1, 0.5)
    assert not all(torch.allclose(p, q) for p, q in zip(by_hand.model.parameters(),
                                                        by_loop.model.parameters()))


# Issue 23, deliver 5: engineering out of the lessons, and every chapter leads with its idea
# and a figure before the code that trains or measures.
CHAPTERS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
ENGINEERING = re.compile(r"papermill|resum|process and folder|torchrun", re.IGNORECASE)


def engineering_in_lessons(cells) -> list[str]:
    """Lines of a chapter's teaching text (markdown outside boxed notes, which are
    blockquotes, up to its questions) that explain how runs are carried out."""
    found = []
    for cell in cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("## Check your understanding"):
                return found
            if not line.lstrip().startswith(">") and ENGINEERING.search(line):
                found.append(line)
    return found


def figure_before_second_section(cells) -> bool:
    """Whether the chapter's first section shows a figure before its second begins."""
    sections = 0
    for cell in cells:
        if cell.cell_type == "markdown":
            sections += sum(line.startswith("## ") for line in cell.source.splitlines())
            if sections >= 2:
                return False
        elif sections == 1 and "plt.show()" in cell.source:
            return True
    return False


def test_the_structure_checks_can_fail():
    cells = jupytext.reads("# %% [markdown]\n# ## 1. Runs\n#\n# Each run is resumed by "
                           "papermill.\n\n# %%\nx = 1\n\n# %% [markdown]\n# ## 2. Next\n\n"
                           "# %%\nplt.show()\n", fmt="py:percent").cells
    assert len(engineering_in_lessons(cells)) == 1
    assert not figure_before_second_section(cells)
    boxed = jupytext.reads("# %% [markdown]\n# ## 1. Runs\n#\n# > Each run is resumed.\n\n"
                           "# %%\nplt.show()\n", fmt="py:percent").cells
    assert engineering_in_lessons(boxed) == [] and figure_before_second_section(boxed)


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_engineering_lives_in_boxed_notes(py):
    assert engineering_in_lessons(jupytext.read(py).cells) == []


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_leads_with_its_idea_and_a_figure(py):
    cells = jupytext.read(py).cells
    assert "**One idea:**" in cells[0].source, f"{py.name}: the first cell states the idea"
    assert figure_before_second_section(cells), f"{py.name}: no figure in the first section"


# Issue 31, deliver 3: the pieces a chapter writes out beside their formula are the package's,
# checked over many random draws, and each check is shown to catch a wrong version.
def chapter_function(chapter: str, tag: str, name: str, **scope):
    scope = {"torch": torch, "F": F, **scope}
    exec(tagged_cell(chapter, tag), scope)
    return scope[name]


@pytest.mark.parametrize("seed", range(10))
def test_vicreg_by_hand_is_the_packages(seed):
    from jepa_lite import losses

    by_hand = chapter_function("07_cjepa", "vicreg-terms", "vicreg_by_hand")
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 64, (1,), generator=g))
    d = int(torch.randint(1, 96, (1,), generator=g))
    z_a, z_b = (torch.randn(2, n, d, generator=g) * 3 * torch.rand(1, generator=g)).unbind(0)
    mine, theirs = by_hand(z_a, z_b), losses.vicreg_terms(z_a, z_b)
    for term in theirs:
        assert mine[term].item() == pytest.approx(theirs[term].item(), rel=1e-4, abs=1e-6), term


def test_a_wrong_vicreg_by_hand_is_caught():
    from jepa_lite import losses

    source = tagged_cell("07_cjepa", "vicreg-terms").replace("z.var(dim=0)", "z.var(dim=1)")
    scope = {"torch": torch}
    exec(source, scope)
    z_a, z_b = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(0)).unbind(0)
    assert scope["vicreg_by_hand"](z_a, z_b)["variance"].item() != pytest.approx(
        losses.vicreg_terms(z_a, z_b)["variance"].item(), rel=1e-4)


# Every chapter has an exercise whose solution is code (under "Solution"), and it runs.
SOLUTION = re.compile(r"<summary>Solution</summary>(.*?)</details>", re.DOTALL)
CODE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def solutions(py: Path) -> list[str]:
    """The code blocks of a chapter's solutions, in order."""
    text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                     for line in py.read_text().splitlines())
    return [textwrap.dedent(code) for block in SOLUTION.findall(text)
            for code in CODE.findall(textwrap.dedent(block))]


def test_solutions_are_found_and_a_failing_one_fails():
    py = Path("x.py")
    text = ("# 1. Derive it.\n#    <details><summary>Solution</summary>\n#\n#    ```python\n"
            "#    assert 1 + 1 == 3\n#    ```\n#\n#    </details>\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "read_text", lambda self: text)
        found = solutions(py)
    assert found == ["assert 1 + 1 == 3\n"]
    with pytest.raises(AssertionError):
        exec(found[0], {})


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_a_solved_exercise_and_its_solutions_run(py):
    found = solutions(py)
    assert found, f"{py.name}: no exercise with a solution in code"
    for code in found:
        exec(compile(code, f"{py.stem}:solution", "exec"), {"__name__": "solution"})


@pytest.mark.parametrize("seed", range(10))
def test_nt_xent_by_hand_is_the_packages(seed):
    from jepa_lite import losses

    nt_xent = chapter_function("08_comparison", "baseline-losses", "nt_xent_by_hand")
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 40, (1,), generator=g))
    d = int(torch.randint(2, 64, (1,), generator=g))
    tau = 0.05 + torch.rand(1, generator=g).item()
    z_a, z_b = torch.randn(2, n, d, generator=g).unbind(0)
    assert nt_xent(z_a, z_b, tau).item() == pytest.approx(losses.nt_xent(z_a, z_b, tau).item(),
                                                          rel=1e-5)
    wrong = tagged_cell("08_comparison", "baseline-losses").replace(
        's.fill_diagonal_(float("-inf"))', "pass")
    scope = {"torch": torch, "F": F}
    exec(wrong, scope)  # a view counted as its own negative: caught
    assert scope["nt_xent_by_hand"](z_a, z_b, tau).item() != pytest.approx(
        losses.nt_xent(z_a, z_b, tau).item(), rel=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_byol_by_hand_is_byols_loss(seed, monkeypatch):
    """The chapter's formula on the tensors BYOL's forward pass compares gives its loss."""
    from jepa_lite.methods import byol as module

    byol_by_hand = chapter_function("08_comparison", "baseline-losses", "byol_by_hand")
    seen = []
    original = module.negative_cosine
    monkeypatch.setattr(module, "negative_cosine",
                        lambda p, z: seen.append((p, z)) or original(p, z))
    torch.manual_seed(seed)
    model = module.BYOL("resnet10").train()
    g = torch.Generator().manual_seed(seed)
    loss, _ = model(torch.randn(4, 3, 32, 32, generator=g), torch.randn(4, 3, 32, 32, generator=g))
    (q_a, zbar_b), (q_b, zbar_a) = seen
    assert byol_by_hand(q_a, q_b, zbar_a, zbar_b).item() == pytest.approx(loss.item(), rel=1e-5)


@pytest.mark.parametrize("seed", range(8))
def test_the_sparse_conv_and_batch_norm_by_hand_are_the_packages(seed):
    """Chapter 02's masked convolution and masked batch norm against the sparse trunk's conv1
    and bn1 in training mode: the same outputs and the same gradients, over random masks."""
    from jepa_lite.course import analysis
    from jepa_lite.encoders import sparse

    masked_conv = chapter_function("02_sparse_encoder", "sparse-bn", "masked_conv")
    masked_bn = chapter_function("02_sparse_encoder", "sparse-bn", "masked_batch_norm")
    g = torch.Generator().manual_seed(seed)
    size = int(torch.randint(2, 6, (1,), generator=g)) * 32
    grid = masking.grid_size(size)
    strategy = ("multiblock", "random", "mixed")[seed % 3]
    masks = masking.sample_masks(3, grid, strategy, g)
    x = torch.randn(3, 3, size, size, generator=g)
    torch.manual_seed(seed)
    trunk = sparse.sparse_trunk("resnet10").train()
    with torch.no_grad():  # BatchNorm's affine parameters away from 1 and 0
        trunk.bn1.weight.uniform_(0.5, 1.5)
        trunk.bn1.bias.uniform_(-0.5, 0.5)
    keep = masking.stage_masks(masks)[2].unsqueeze(1).logical_not().float()
    pixels = x * masking.pixel_mask(masks).unsqueeze(1).logical_not()
    mine = masked_bn(masked_conv(trunk.conv1, pixels, keep), keep, trunk.bn1.weight,
                     trunk.bn1.bias, trunk.bn1.eps)
    theirs = analysis.stage_outputs(trunk, x, masks)["bn1"]
    assert torch.allclose(mine, theirs, atol=1e-4)
    params = (trunk.conv1.weight, trunk.bn1.weight, trunk.bn1.bias)
    w = torch.randn(mine.shape, generator=g)
    trunk.mask_state.set(masks, x.dtype)
    try:
        package = trunk.bn1(trunk.conv1(pixels))
    finally:
        trunk.mask_state.clear()
    for a, b in zip(torch.autograd.grad((mine * w).sum(), params),
                    torch.autograd.grad((package * w).sum(), params)):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)
    # a dense BatchNorm on the same masked input is not the sparse one
    dense = torch.nn.functional.batch_norm(masked_conv(trunk.conv1, pixels, keep), None, None,
                                           trunk.bn1.weight, trunk.bn1.bias, True)
    assert not torch.allclose(dense * keep, theirs, atol=1e-3)


@pytest.mark.parametrize("seed", range(10))
def test_the_block_size_rule_by_hand_is_the_packages(seed):
    import math

    rule = chapter_function("01_masking", "block-size", "block_size_by_hand", math=math)
    g = torch.Generator().manual_seed(seed)
    grid = tuple(int(v) for v in torch.randint(2, 15, (2,), generator=g))
    scale = sorted((0.05 + 0.6 * torch.rand(2, generator=g)).tolist())
    aspect = sorted((0.3 + 2 * torch.rand(2, generator=g)).tolist())
    for _ in range(200):
        u_scale, u_aspect = torch.rand(2, generator=g.clone_state()).tolist()
        assert rule(grid, u_scale, u_aspect, scale, aspect) == masking.block_size(
            grid, scale, aspect, g)


def test_a_wrong_block_size_rule_is_caught():
    import math

    source = tagged_cell("01_masking", "block-size").replace("math.floor(s * gh * gw)",
                                                             "math.ceil(s * gh * gw)")
    scope = {"math": math}
    exec(source, scope)
    g = torch.Generator().manual_seed(0)
    wrong = 0
    for _ in range(200):
        u = torch.rand(2, generator=g.clone_state()).tolist()
        wrong += scope["block_size_by_hand"]((7, 7), *u) != masking.block_size(
            (7, 7), (0.15, 0.2), (0.75, 1.5), g)
    assert wrong > 0


@pytest.mark.parametrize("seed", range(6))
def test_the_probes_by_hand_are_the_packages(seed):
    """Chapter 05's k-NN vote and linear probe against probes.knn_classify and
    probes.linear_probe (official protocol) on random class-structured features."""
    from jepa_lite.eval import probes

    knn = chapter_function("05_probes", "probes", "knn_by_hand")
    linear = chapter_function("05_probes", "probes", "linear_probe_by_hand")
    g = torch.Generator().manual_seed(seed)
    classes, dim = int(torch.randint(2, 6, (1,), generator=g)), int(torch.randint(4, 33, (1,),
                                                                               generator=g))
    centres = torch.randn(classes, dim, generator=g)
    y, val_y = (torch.randint(0, classes, (n,), generator=g) for n in (120, 40))
    x = centres[y] + torch.randn(120, dim, generator=g)
    val_x = centres[val_y] + torch.randn(40, dim, generator=g)
    k = int(torch.randint(1, 30, (1,), generator=g))
    assert torch.allclose(knn(x, y, val_x, classes, k),
                          probes.knn_classify(x, y, val_x, classes, k=k), rtol=1e-4)
    batch = probes.probe_batch_size(len(x))
    curve = linear(x, y, val_x, val_y, classes, 6, batch, seed=seed)
    theirs = probes.linear_probe(x, y, val_x, val_y, classes, 6, seed=seed, batch_size=batch)
    assert curve == pytest.approx(theirs["curve_val_top1"], abs=1 / 40 + 1e-9)


# Issue 34: chapter 10's I-JEPA step by hand (the cell tagged ``ijepa-step``) is the package's.
def chapter_ijepa_step(source: str | None = None):
    scope = {"torch": torch, "F": F}
    exec(source or tagged_cell("10_ijepa", "ijepa-step"), scope)
    return scope["ijepa_step"]


def _ijepa_pair(seed: int, size: int, arch: str = "vit_micro"):
    cfg = TrainConfig(method="ijepa").with_changes(
        arch=arch, image_size=size, predictor_width=64, predictor_depth=2, min_keep=0,
        seed=seed, precision="fp32", compile=False)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(4, 3, size, size, generator=g)
    masks = methods.get("ijepa").views(cfg).masks.draw(4, seed)
    cpu = torch.device("cpu")
    return images, masks, train.build(cfg, cpu), train.build(cfg, cpu)


@pytest.mark.parametrize("seed,size,momentum", [(0, 64, 0.996), (1, 96, 0.9), (2, 128, 0.5),
                                                (3, 64, 0.99)])
def test_chapter_10s_ijepa_step_by_hand_is_train_step(seed, size, momentum):
    ijepa_step = chapter_ijepa_step()
    images, masks, by_hand, by_loop = _ijepa_pair(seed, size)
    for _ in range(2):  # the second step starts from the EMA'd target and AdamW's state
        a = ijepa_step(by_hand.model, by_hand.optimizer, images, *masks, momentum)
        b, _ = train.train_step(by_loop, [dict(zip(("images", "context", "targets"),
                                                   (images, *masks)))], 1, momentum)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
        assert_same_gradients_and_weights(by_hand.model, by_loop.model)
    fresh = _ijepa_pair(seed, size)[2].model.target_encoder.parameters()
    assert any(not torch.equal(p, q) for p, q in zip(by_hand.model.target_encoder.parameters(),
                                                     fresh))  # the EMA moved the target


@pytest.mark.parametrize("wrong", [
    ("F.smooth_l1_loss(pred, h.view(b, p, k, -1))", "F.mse_loss(pred, h.view(b, p, k, -1))"),
    ("model.context_encoder(images, context)",  # every token, cut to the context's count
     "model.context_encoder(images)[:, :context.shape[1]]"),
    ("xi.lerp_(theta, 1 - momentum)", "pass"),  # no EMA
])
def test_a_wrong_ijepa_step_is_caught(wrong):
    """The comparison can fail: another loss, the context encoder given every token, or no
    EMA, and the step differs from train_step's (its loss or its weights)."""
    ijepa_step = chapter_ijepa_step(tagged_cell("10_ijepa", "ijepa-step").replace(*wrong))
    images, masks, by_hand, by_loop = _ijepa_pair(0, 64)
    a = ijepa_step(by_hand.model, by_hand.optimizer, images, *masks, 0.9)
    b, _ = train.train_step(by_loop, [dict(zip(("images", "context", "targets"),
                                               (images, *masks)))], 1, 0.9)
    same_weights = all(torch.allclose(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(
        by_hand.model.parameters(), by_loop.model.parameters()))
    assert a.item() != pytest.approx(b.item(), rel=1e-5) or not same_weights
