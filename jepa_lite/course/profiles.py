"""The course's profiles: how big a run of the chapters is (smoke, demo, gpu, full), each a
recipe of :class:`~jepa_lite.config.TrainConfig` changes and a data set, and the paper's
ablation grid that chapter 09 sweeps. The course layer; ``config`` says what a run is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_lite.config import PAPER_EXACT, MaskOptions, TrainConfig
from jepa_lite.data.scenes import SyntheticSpec
from jepa_lite.errors import UsageError

# The paper's ablations (chapter 09): its default predictor and masking, and the values it
# tried of each (data/paper_results.csv, "CNN-JEPA paper ablations").
ABLATION_DEFAULT = {"predictor_layers": 3, "kernel_size": 3, "depthwise_separable": True,
                    "strategy": "mixed"}
PAPER_GRID = {"predictor_layers": [1, 2, 3, 4, 5, 6], "kernel_size": [3, 5, 7, 9],
              "depthwise_separable": [True, False],
              "strategy": ["mixed", "multiblock", "random"]}


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    """How big a course run is. ``synthetic`` is None when the profile needs a DATA_ROOT."""

    name: str
    description: str
    image_size: int  # pretraining / evaluation resolution, a multiple of the trunk's stride
    synthetic: SyntheticSpec | None  # the generated data set used when DATA_ROOT is None
    mask_draws: int  # masks drawn for chapter 01's statistics (heat maps, histograms)
    dataset: str = "synthetic"
    strategy: str = "mixed"
    masking: MaskOptions = field(default_factory=MaskOptions)
    pretrain: dict = field(default_factory=dict)  # fields that differ from the paper's
    methods: dict = field(default_factory=dict)  # method -> its fields that differ in addition
    probe_epochs: int = 90  # linear-probe epochs (the paper's 90)
    knn_k: int = 200  # k-NN neighbours: the paper's 200, for 1,300 training images per class
    supervised_epochs: int = 0  # chapter 05's supervised reference; 0: skipped (too costly)
    notes: str = ""  # what the recipe chooses and why (shown by chapter 04)
    # fields changed on top of the recipe in the chapters that train many runs (07: four,
    # 08: five, 09: a sweep), so that they stay as short as the profile promises, and the
    # generated data set they use instead of ``synthetic`` (None: the same)
    many_runs: dict = field(default_factory=dict)
    many_runs_data: SyntheticSpec | None = None
    # chapter 09's sweep: factor -> values, each changed alone from ABLATION_DEFAULT
    # (jepa_lite.course.sweep), trained with the many-run recipe and data
    ablations: dict = field(default_factory=dict)
    # chapter 10: more ViTs it trains I-JEPA on, besides the profile's (full: ViT-B/16, the
    # second of Table I's I-JEPA rows)
    more_vits: tuple[str, ...] = ()

    def changes(self, method: str = "cnn-jepa", many_runs: bool = False) -> dict:
        """The fields the profile sets for a method, on top of the paper's defaults (the
        method's own settings last); ``many_runs``: as chapters 07-09 train their runs."""
        return {"image_size": self.image_size, "strategy": self.strategy,
                "masking": self.masking, **self.pretrain,
                **(self.many_runs if many_runs else {}), **self.methods.get(method, {})}

    def config(self, method: str = "cnn-jepa", seed: int = 0,
               many_runs: bool = False) -> TrainConfig:
        """The profile's recipe for a method as a configuration. Settings of the profile
        that the method does not have are left out (masking for SimCLR, ...)."""
        return TrainConfig(method=method, seed=seed).with_changes(
            strict=False, **self.changes(method, many_runs))


# Short-run settings measured on the generated scenes (docs/experiments.md): the paper's lr
# 0.01 and EMA start 0.996 are tuned for 50,000 steps, not a few hundred; BYOL learned there
# with VICReg's LARS, not with the authors' AdamW 0.01; SimCLR with half its colour jitter
# (as SimCLR on CIFAR-10)
SHORT_RUN = {"cnn-jepa": {"lr": 0.002, "ema": (0.99, 1.0)},
             "cjepa": {"lr": 0.002, "ema": (0.99, 1.0)},
             "simclr": {"jitter_strength": 0.5},
             "byol": {"optimizer": "lars", "lr": 0.5, "weight_decay": 1e-6}}

# The gpu profile trains at batch 128, a quarter of the authors' 512: the LARS baselines'
# learning rates scaled as the batch (SimCLR's linear scaling rule); AdamW's kept (CNN-JEPA
# learned with it at batch 128: docs/benchmarks.md, "The gpu profile")
GPU_BATCH = {"simclr": {"lr": 1.7 * 128 / 512}, "vicreg": {"lr": 0.5 * 128 / 512}}

# I-JEPA trains its own encoder, a ViT (chapter 10): on a CPU the small one of our own, with
# a predictor as narrow; the ViT-S/16 of the paper's Table I on a GPU (and, in `full`, its
# ViT-B/16 too: Profile.more_vits); the epochs are each profile's CNN-JEPA's, our choice.
# The CPU grids are 8x8 tokens (128 px) and 4x4 (64 px), whose target blocks have 1-12
# tokens: a block keeps one token or more (the official more than 10 is for 14x14 grids)
CPU_VIT = {"ijepa": {"arch": "vit_micro", "predictor_width": 64, "predictor_depth": 2,
                     "min_keep": 0}}
GPU_VIT = {"ijepa": {"arch": "vit_small"}}

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", "minutes on a CPU: small generated data; every chapter runs, and "
                         "CNN-JEPA's linear probe clears its random init (chapter 05's "
                         "verdict; its k-NN within noise)",
                # 128 px with the plain ResNet-10: a 4x4 grid, whose multi-block blocks are
                # 1-4 cells, a quarter of them single cells (at 64 / 96 px every block was
                # one cell); batch 16: more steps for the same images, which learned more in
                # the same time (docs/experiments.md)
                image_size=128, synthetic=SyntheticSpec(classes=10, per_class=100,
                                                        val_per_class=20, size=128),
                mask_draws=2_000,
                pretrain={"arch": "resnet10", "epochs": 5, "batch_size": 16,
                          "warmup_epochs": 1, "workers": 0, "checkpoint_every": 0,
                          "log_every": 5},
                methods={**SHORT_RUN, **CPU_VIT},
                # chapters 07 and 08 train nine runs: on the earlier smoke set and recipe
                # (144 images at 64 px, 4 epochs; a 2x2 grid of single-cell blocks), which
                # keeps them to minutes; they check that everything runs, nothing more
                many_runs={"image_size": 64, "epochs": 4, "batch_size": 32},
                many_runs_data=SyntheticSpec(classes=6, per_class=24, val_per_class=8,
                                             size=64),
                probe_epochs=20, knn_k=20, supervised_epochs=2,
                # four runs: one value of three factors besides the default, to show that
                # the sweep runs; on a 2x2 grid the numbers mean nothing
                ablations={"predictor_layers": [1, 3], "depthwise_separable": [True, False],
                           "strategy": ["mixed", "random"]}),
        Profile("demo", "about 1.5 hours on a 2-core CPU (docs/results), minutes on a GPU: "
                        "more generated data, longer runs",
                # the smoke geometry (a 4x4 grid) with twice the images, per_class 200, and
                # longer runs; the many-run chapters (07, 08: nine runs) train 4 epochs each
                image_size=128, synthetic=SyntheticSpec(classes=10, per_class=200,
                                                        val_per_class=40, size=128),
                mask_draws=20_000,
                pretrain={"arch": "resnet10", "epochs": 12, "batch_size": 16,
                          "warmup_epochs": 1, "workers": 2, "checkpoint_every": 4},
                methods={**SHORT_RUN, **CPU_VIT}, many_runs={"epochs": 4},
                knn_k=20, supervised_epochs=12,
                # eight runs: the ends of the depth range, kernels up to the
                # 4x4 grid's reach, standard convs, the three masking strategies
                ablations={"predictor_layers": [1, 3, 6], "kernel_size": [3, 5, 7],
                           "depthwise_separable": [True, False],
                           "strategy": ["mixed", "multiblock", "random"]}),
        Profile("gpu", "one GPU (Colab's T4 included): generated busy scenes at 224 px, "
                       "the paper's 7x7 grid, ResNet-18, 40 epochs, long enough that "
                       "learning shows; chapters 04-05 in 8.1 minutes on one H200 "
                       "(docs/results/gpu)",
                # 40 epochs: long enough that CNN-JEPA learned these scenes on a GPU
                # (docs/benchmarks.md, "The gpu profile", has the numbers)
                image_size=224,
                synthetic=SyntheticSpec(classes=10, per_class=1000, val_per_class=200,
                                        size=224, kind="busy"),
                mask_draws=20_000,
                pretrain={"arch": "resnet18", "epochs": 40, "batch_size": 128,
                          "warmup_epochs": 4, "cache": "device"},
                methods={**GPU_BATCH, **GPU_VIT},
                knn_k=20, supervised_epochs=20,
                notes="The paper's optimizer and EMA (AdamW lr 0.01, weight decay 0.01, EMA "
                      "0.996 -> 1, mixed masking) at batch 128 instead of 512; the LARS "
                      "baselines' learning rates scaled with the batch (x 128/512, the linear "
                      "scaling rule of SimCLR's paper), the AdamW ones kept. The training "
                      "images are decoded once into GPU memory (--cache device, 1.4 GiB). "
                      "Chapters 07-09 train with this same recipe: chapter 04's run is "
                      "linked, not trained again.",
                # one run besides the default (chapter 04's, linked): the paper's question
                # of blocks against random cells, at the paper's grid
                ablations={"strategy": ["mixed", "random"]}),
        Profile("full", "the paper's setting: ImageNet-100 (or ImageNet-1k) at 224 px on GPUs",
                image_size=224, synthetic=None, dataset="ImageNet-100", mask_draws=100_000,
                # compiled: minutes of compiling against hours of training, for a faster
                # step (docs/benchmarks.md, "--compile")
                pretrain={"arch": "resnet50", "epochs": 200, "batch_size": 512, "workers": 8,
                          "checkpoint_every_steps": 500, "compile": True, **PAPER_EXACT},
                methods=GPU_VIT,
                more_vits=("vit_base",),
                notes="--paper-exact: the table was made by the authors' code, so the "
                      "reproduction runs it as they did (official masks with both quirks, EMA "
                      "momentum stepped per epoch, zero-initialised residual BatchNorm, "
                      "BatchNorm groups of 128 = their batch per GPU: one GPU accumulates 4 "
                      "micro-batches of 128). Our fixes are one option away (--no-official-"
                      "masks, --no-ema-per-epoch, ...) and have not been measured at this "
                      "scale.",
                ablations=PAPER_GRID),
    )
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def profiles_table() -> str:
    """The profiles as a Markdown table."""
    rows = ["| profile | image size | data | what it is for |", "|---|---|---|---|"]
    for p in PROFILES.values():
        data = p.synthetic.name if p.synthetic else f"{p.dataset} (DATA_ROOT)"
        rows.append(f"| `{p.name}` | {p.image_size} px | {data} | {p.description} |")
    return "\n".join(rows)
