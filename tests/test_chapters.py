"""What a chapter writes out by hand is what the package runs, and how a chapter is laid out
(issue 23).

Chapter 04's twenty-line JEPA step (the cell tagged ``jepa-step``) is executed as the chapter
defines it and compared with ``train.train_step`` on the same model, images and masks: the
same loss, the same gradient for every parameter, the same weights after AdamW and the EMA.
"""

import re
from pathlib import Path

import jupytext
import pytest
import torch
import torch.nn.functional as F

from jepa_lite import masking, train
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
        b, _ = train.train_step(by_loop, [(images, mask)], 1, momentum)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
        for (name, p), (_, q) in zip(by_hand.model.named_parameters(),
                                     by_loop.model.named_parameters(), strict=True):
            assert (p.grad is None) == (q.grad is None), name
            if p.grad is not None:
                assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
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
    train.train_step(by_loop, [(images, mask)], 1, 0.5)
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
