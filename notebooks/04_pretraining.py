# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — Pretraining
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/04_pretraining.ipynb)
#
# **One idea:** the pieces of chapters 01–03 make one training step — masks from the data
# loader, sparse context encoder, mask token, predictor, loss on target cells — and an
# exponential moving average turns the context encoder into the target encoder.
#
# > "The target latent representations are obtained by a target encoder whose weights are
# > updated using the exponential moving average of the context encoder's weights." (III-A)
#
# Code: `jepa_lite/methods/cnn_jepa.py`, `jepa_lite/train.py`, `jepa_lite/config.py` (the run's
# configuration), `jepa_lite/schedules.py`,
# `jepa_lite/losses.py`. The same loop runs from the shell: `jepa-lite pretrain`.

# %% tags=["parameters"]
PROFILE = "smoke"  # smoke | demo | gpu | full
DATA_ROOT = None  # ImageFolder root (train/, val/); None: smoke/demo generate their data
OUT_DIR = None  # None: outputs/ of the checkout
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0
INTERACTIVE = True  # False under papermill: static figures only
RUN_DIR = None  # the pretraining run's folder; None: inside OUT_DIR (04_pretraining/run)
MICRO_BATCH = None  # images per forward pass; None: the profile's (full: 128; a T4: 64)

# %%
import sys

if "google.colab" in sys.modules:  # Colab: install the package once; torch is already there
    import importlib
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "jepa-lite @ git+https://github.com/jepa-lite/jepa_lite@main"], check=True)
    importlib.invalidate_caches()

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from jepa_lite import masking, runtime, schedules, train
from jepa_lite.checkpoint import load_checkpoint, read_metrics
from jepa_lite.course import analysis, runs, viz
from jepa_lite.course.chapter import start_chapter
from jepa_lite.data import folders
from jepa_lite.encoders import resnet
from jepa_lite.eval.probes import checkpoint_config
from jepa_lite.losses import jepa_loss

run = start_chapter("04_pretraining", PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED, RUN_DIR)
cfg = run.config
tcfg = cfg.train_config()  # the profile's recipe: a config.TrainConfig
if MICRO_BATCH:
    tcfg = tcfg.with_changes(micro_batch=MICRO_BATCH)
data_root = cfg.data_root()
n_train = len(folders.image_folder(data_root, "train"))
steps_per_epoch = n_train // tcfg.batch_size
nproc = runs.processes(tcfg.batch_size, tcfg.micro_batch, cfg.device.type)
micro = tcfg.micro_batch or tcfg.batch_size // nproc
grid = cfg.grid
print(f"{PROFILE}: {tcfg.arch} at {tcfg.image_size} px (a {grid[0]}x{grid[1]} mask grid), "
      f"{tcfg.epochs} epochs of {steps_per_epoch} steps on {n_train} images; a step is a "
      f"batch of {tcfg.batch_size} = {nproc} process(es) x "
      f"{tcfg.batch_size // (nproc * micro)} micro-batch(es) of {micro}")
print(train.geometry(tcfg))
print("device:", runtime.device_report(cfg.device))
print(f"augmentation: batched on the {cfg.device.type} (jepa_lite.data.augment); model "
      f"{'compiled (torch.compile)' if tcfg.compile else 'eager (not compiled)'}")
if cfg.profile.notes:
    print(cfg.profile.notes)

# %% [markdown]
# ## 1. One step, written out
#
# Everything of chapters 01-03 in one step, chapter 00's figure in code: the sparse context
# encoder sees the image with the target cells hidden, the mask token fills those cells, the
# predictor predicts them, and the dense target encoder, which gets no gradient, gives what
# they should be.

# %%
fig = viz.pipeline_figure()
plt.show()

# %% [markdown]
# With $p_i$ the prediction and $h_i$ the target feature at target cell $i$ (vectors over
# channels, $\hat p_i = p_i / \lVert p_i \rVert$), $M$ the set of target cells, $\theta$ the
# context encoder's weights and $\xi$ the target encoder's, one step is
#
# $$\mathcal{L} = \frac{1}{|M|} \sum_{i \in M} \text{smooth-L1}(\hat p_i, \hat h_i)
#   \;\approx\; \frac{1}{|M|} \sum_{i \in M} \bigl(1 - \cos(p_i, h_i)\bigr), \qquad
#   \xi \leftarrow m\,\xi + (1 - m)\,\theta ,$$
#
# an AdamW step on the context encoder, mask token and predictor, then the EMA. (Section 2
# shows when the $\approx$ is an equality, and what the paper's "L2 loss" has to do with it.)
# The function below is that step, on the package's model (its context encoder, mask token,
# predictor and target encoder), by hand.

# %% tags=["jepa-step"]
def jepa_step(model, optimizer, images, mask, momentum):
    """One CNN-JEPA step by hand: what train.train_step does for this method."""
    optimizer.zero_grad(set_to_none=True)
    context = model.context_encoder(images, mask)  # sparse: zero at the target cells
    filled = model.mask_token(context, mask)  # one learned vector in every target cell
    pred = model.predictor(filled)  # 3 x (depthwise, pointwise, BatchNorm, ReLU)
    with torch.no_grad():  # the target gets no gradient
        target = model.target_encoder(images)  # dense, the whole image
    p, h = F.normalize(pred, dim=1), F.normalize(target, dim=1)  # a unit vector per cell
    per_cell = F.smooth_l1_loss(p, h, reduction="none", beta=1.0).sum(1)  # 1 - cos(p, h)
    loss = per_cell[mask].mean()  # the target cells only
    loss.backward()
    optimizer.step()  # AdamW
    with torch.no_grad():  # EMA: xi <- m xi + (1 - m) theta, parameters only
        for xi, theta in zip(model.target_encoder.parameters(),
                             model.context_encoder.parameters()):
            xi.lerp_(theta, 1 - momentum)
    return loss.detach()


# %% [markdown]
# On eight real training images and one multi-block mask each, the same model stepped by
# hand and by the training loop (`train.train_step`, from the same seed), on the CPU in fp32
# so that both do exactly the same arithmetic; they must agree on the loss, on every
# gradient and on every weight after the step (`tests/test_chapters.py` checks it over many
# seeds):

# %%
cpu = torch.device("cpu")
one_step = tcfg.with_changes(compile=False, precision="fp32")
folder = folders.image_folder(data_root, "train")
to_tensor = folders.eval_transform(tcfg.image_size, resnet.patch_of(tcfg.arch))
images = torch.stack([to_tensor(folder.loader(folder.samples[i][0]))
                      for i in torch.linspace(0, len(folder) - 1, 8).long().tolist()])
mask = masking.sample_masks(8, grid, "multiblock", torch.Generator().manual_seed(SEED))
by_hand, by_loop = train.build(one_step, cpu), train.build(one_step, cpu)
momentum0 = tcfg.method.ema[0]
loss_hand = jepa_step(by_hand.model, by_hand.optimizer, images, mask, momentum0)
loss_loop, _ = train.train_step(by_loop, [{"images": images, "mask": mask}], 1, momentum0)
pairs = list(zip(by_hand.model.named_parameters(), by_loop.model.named_parameters()))
grad_gap = max((a.grad - b.grad).abs().max().item()
               for (_, a), (_, b) in pairs if a.grad is not None)
weight_gap = max((a - b).abs().max().item() for (_, a), (_, b) in pairs)
print(f"loss by hand {loss_hand.item():.6f}, by train_step {loss_loop.item():.6f}; largest "
      f"gradient difference {grad_gap:.1e}, largest weight difference after the step "
      f"{weight_gap:.1e}")

# %% [markdown]
# ## 2. The loss, in three equal forms
#
# > "The training objective is to minimize the L2 loss between the predicted and target
# > latent representations at the masked locations." (III-A)
#
# Smooth-L1 (beta 1) is $\tfrac12 x^2$ where $|x| < 1$; the components of two unit vectors
# differ by less than 1 in practice, so per target cell
#
# $$\text{smooth-L1}(\hat p, \hat h) = \tfrac12 \lVert \hat p - \hat h \rVert^2
#   = 1 - \cos(p, h), \qquad \hat p = p / \lVert p \rVert .$$
#
# > **Paper vs code.** The formula above is the authors' code (and `losses.jepa_loss`,
# > `kind="official"`, our default): it L2-normalises the prediction and the target over
# > channels at every target cell, takes smooth-L1 summed over channels and averages over
# > the target cells. The paper says "L2 loss" and does not say that the vectors are
# > normalised; the squared L2 distance of the normalised vectors is twice the coded loss, a
# > factor that scales the gradient and is absorbed by the learning rate. (`--loss l2` is a
# > squared error *without* normalising, not any of the three.)
#
# One cell of 512 random channels, the three forms:

# %%
g = torch.Generator().manual_seed(SEED)
p, h = torch.randn(2, 1, 512, 1, 1, generator=g).unbind(0)
every = torch.ones(1, 1, 1, dtype=torch.bool)
coded = jepa_loss(p, h, every, "official").item()
half_l2 = 0.5 * (F.normalize(p, dim=1) - F.normalize(h, dim=1)).square().sum().item()
one_minus_cos = 1 - F.cosine_similarity(p, h, dim=1).item()
print(f"smooth-L1 (coded) {coded:.6f} = 1/2 L2^2 {half_l2:.6f} = 1 - cos {one_minus_cos:.6f}")

# %% [markdown]
# ## 3. Schedules
#
# The paper (IV-C): AdamW, weight decay 0.01, a cosine learning-rate schedule with 10
# warm-up epochs and peak 0.01, and an EMA momentum "increasing from 0.996 to 1.0". Early on
# the target encoder follows the context encoder quickly, at the end it freezes. The
# figure's titles read the curves it draws.
#
# The paper's values are for about 50,000 steps (200 epochs of ImageNet-100's roughly
# 126,700 training images at batch 512: 247 steps an epoch). The `smoke` and `demo` profiles
# run a few hundred to 1,500 steps (printed above) and start lower (peak 0.002, EMA from
# 0.99): with the paper's peak 0.01 a short run on an earlier version of the generated data
# did not beat a random encoder (k-NN 0.095 against 0.125; docs/experiments.md, "Evidence
# that it learns"). The EMA start was compared only on the busy scenes, where no setting
# beat chance (0.996: 0.120, 0.99: 0.065, chance 0.100; the same page).
#
# > **Paper vs code.** The authors' code fills in what the paper leaves open
# > (`docs/paper.md`): the warm-up is linear, the cosine ends at 0.001 x peak and is stepped
# > every iteration, and the momentum follows a cosine, stepped once per epoch. We step the
# > momentum every iteration by default (`--ema-per-epoch` for the official behaviour,
# > which the `full` profile uses: it runs `--paper-exact`, printed above); the figure draws
# > both.

# %%
total = steps_per_epoch * tcfg.epochs
warmup = round(tcfg.warmup_epochs * steps_per_epoch)
lr = [schedules.learning_rate(s, total, warmup, tcfg.method.lr) for s in range(total)]
momentum = {name: [schedules.ema_momentum_at(s, steps_per_epoch, tcfg.epochs, per_epoch,
                                              *tcfg.method.ema)
                   for s in range(total)]
            for name, per_epoch in (("per step (default)", False), ("per epoch (official)", True))}
fig = viz.fig_schedules(lr, momentum, steps_per_epoch)
run.savefig(fig, "schedules")
plt.show()

# %% [markdown]
# The EMA update after every step (`methods/base.py`, `Method.update_target`, over the
# pairs `CNNJEPA.ema_pairs` names: one fused lerp over the parameters, torch's
# `get_ema_multi_avg_fn`; BatchNorm's running statistics are not
# averaged), with $\theta$ the context encoder and $\xi$ the target:
#
# $$\xi \leftarrow m\,\xi + (1 - m)\,\theta, \qquad
#   m = 1 - (1 - m_0)\,\tfrac12\left(1 + \cos \tfrac{\pi t}{T}\right), \quad m_0 = 0.996 .$$
#
# With $m = 0.996$ the target moves 0.4 % of the way to the context encoder per step: it
# averages roughly the last $1 / (1 - m) = 250$ steps.
#
# ## 4. A real pretraining run
#
# The step of section 1, repeated over the profile's epochs with the schedules of section 3:
# the loss should fall and the features should keep their spread (section 5). The cell
# below trains, or finds the run already trained.
#
# > **Engineering notes** (how the run is carried out; none of it changes the method)
# >
# > - *Micro-batches.* A step takes a batch of images (512 in the paper) and cuts it into
# >   micro-batches (128 in the paper, one per GPU): each is one forward pass and one
# >   BatchNorm group, and their gradients add up before AdamW steps. One GPU accumulates 4
# >   micro-batches, four GPUs (torchrun) compute one each: the same images, crops, masks and
# >   optimizer steps. Masks are drawn per micro-batch.
# > - *Precision and the loader.* bf16 on a GPU that computes it natively, fp16 with a
# >   gradient scaler on older ones, fp32 on a CPU. The loader's workers only read and decode;
# >   the crop and flip run batched on the training device (`jepa_lite/data/augment.py`).
# > - *Compiling.* In `full` the model is compiled (`torch.compile`; `--no-compile` turns it
# >   off). On one H100 (docs/benchmarks.md, "`--compile`"): a ResNet-50 run at 224 px,
# >   batch 64, spent 175 s in its first, 10-step epoch, mostly compiling; in a separate run
# >   (bf16, batch 128) the compiled step trained 2.5x the images per second of the eager
# >   one. `smoke` and `demo` run eager.
# > - *A run outside the notebook.* It trains in a process and folder of its own (`RUN_DIR`:
# >   `metrics.jsonl`, `last.pt`, `train.log`); a stopped kernel does not stop it. Running the
# >   cell again finds the run complete, still running (and follows it) or stopped, e.g. by a
# >   preemption (and resumes it from its last checkpoint); the command it prints does the
# >   same from a shell.

# %%
checkpoint = run.pretrained(MICRO_BATCH)  # runs.train with the profile's recipe
history = read_metrics(cfg.run_dir())
for row in history:
    print(f"epoch {row['epoch']:3d}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
          f"momentum {row['momentum']:.5f}  {row['images_per_s']:.0f} img/s")

# %% [markdown]
# ## 5. Is it learning, or collapsing?
#
# A JEPA can cheat by mapping every image to the same features (*complete* collapse): the
# loss would drop to zero and the features would be useless. It can also keep images apart
# along a few directions only (*dimensional* collapse). Two diagnostics of the target
# encoder's features watch for them, once per epoch, on the last 256 training images of
# the epoch, one row per image (the 2D feature map average-pooled, as the baselines of
# chapter 08 are measured too): the per-channel standard deviation of the L2-normalised
# rows sees complete collapse (0 when every image is the same), the effective rank sees
# dimensional collapse (far below the most N rows can span, the dashed line). Each is blind
# to the other kind; chapter 07 shows both on features made to order.

# %%
fig = viz.fig_training(history, channels=resnet.dense_trunk(tcfg.arch).dim)
run.savefig(fig, "training")
plt.show()

# %% [markdown]
# The two diagnostics (`diagnostics.collapse_stats`), over the $N$ rows $z_i$ of the L2-normalised
# pooled target features (one per image: the last 256 training images of the epoch) with $C$
# channels:
#
# $$\text{std} = \frac1C \sum_{c=1}^{C} \operatorname{std}_i(z_{ic}), \qquad
#   \text{effective rank} = \exp\Bigl(-\sum_k p_k \log p_k\Bigr),\;
#   p_k = \frac{\sigma_k}{\sum_j \sigma_j},$$
#
# with $\sigma_k$ the singular values of the centred $z$. Spread evenly over the sphere,
# the std is $1/\sqrt{C}$ and the rank $\min(N - 1, C)$. When every row is the same vector
# the std is 0; the rank, though, reads only the *shares* $p_k$ of the singular values, not
# their size, so rows that are the same vector plus a little noise have noise in every
# direction and a rank as high as spread features have: the rank cannot see complete
# collapse, only the std can
# (`diagnostics.collapse_flags` flags it below 2 % of $1/\sqrt{C}$). Neither is a measure of
# quality: an encoder can keep both high and still not beat its random initialisation
# (chapter 07 shows one).

# %%
run.log(arch=tcfg.arch, epochs=len(history), first_loss=history[0]["loss"],
        final_loss=history[-1]["loss"], target_std=history[-1]["target_std"],
        effective_rank=history[-1]["effective_rank"],
        images_per_s=history[-1]["images_per_s"], checkpoint=str(checkpoint))
print(f"checkpoint for the next chapters: {checkpoint}")

# %% [markdown]
# ## 6. What is predicted, where
#
# The loss is an average over target cells; here it is taken apart. On validation images
# with multi-block masks, every target cell's cosine between the trained predictor's output
# and the target encoder's feature (1 = the loss's ideal), against how far that cell is
# from the nearest visible one, next to the same network at its initialisation (the run's
# own seed). A high cosine alone does not show that the predictor uses the context: the
# target encoder's features (ReLU outputs, all positive) sit in a narrow cone, so a
# predictor that ignored the image and always
# answered the *mean target feature* would score high too. That constant predictor is drawn
# beside each model (dotted); what the context adds is the gap between the two.

# %%
trained = train.build_model(checkpoint_config(checkpoint))
trained.load_state_dict(load_checkpoint(checkpoint)["model"])
torch.manual_seed(checkpoint_config(checkpoint).seed)
untrained = train.build_model(checkpoint_config(checkpoint))  # the run's starting point
val_folder = folders.image_folder(data_root, "val")
pick = torch.linspace(0, len(val_folder) - 1, min(64, len(val_folder))).long().tolist()
val_images = torch.stack([to_tensor(val_folder.loader(val_folder.samples[i][0]))
                          for i in pick]).to(cfg.device)
val_mask = masking.sample_masks(len(pick), grid, "multiblock",
                                torch.Generator().manual_seed(SEED)).to(cfg.device)
agreement = {name: analysis.cell_agreement(model.to(cfg.device), val_images, val_mask)
             for name, model in (("trained", trained), ("random init", untrained))}
fig = viz.fig_cell_agreement(agreement)
run.savefig(fig, "cell_agreement")
plt.show()
for name, a in agreement.items():
    print(f"{name:12s} mean cosine over {len(a['cosine'])} target cells: "
          f"{a['cosine'].mean():.3f}; always predicting the mean target: "
          f"{a['mean_cosine'].mean():.3f}")

# %% [markdown]
# The same cosines where they are, on the first validation images: each target cell
# coloured by its cosine, the context greyed out. A cell the trained predictor gets right
# at the edge of a block and wrong deep inside it is the reach at work; a cell it gets
# wrong everywhere is a part of the scene the context does not predict.

# %%
unnormalise = (torch.tensor(folders.IMAGENET_STD)[:, None, None],
               torch.tensor(folders.IMAGENET_MEAN)[:, None, None])
pictures = val_images[:4].cpu() * unnormalise[0] + unnormalise[1]
fig = viz.fig_cell_agreement_map(pictures, agreement)
run.savefig(fig, "cell_agreement_map")
plt.show()

# %% [markdown]
# Then the predictor's reach (chapter 03) on one masked image: which cells are connected to
# the prediction at a centre and a corner target, and how many of them are context. The
# reach depends on the predictor's layers and kernels only, so the trained predictor is
# also drawn on the paper's 7x7 grid of the same image at 224 px: on a small grid three
# 3x3 layers reach every cell from anywhere, and the centre-against-corner difference shows
# only on the larger grid.

# %%
channels = trained.context_encoder.dim
grids = {}
for name, g in ((f"this run's {grid[0]}x{grid[1]} grid", grid),
                ("the paper's 7x7 grid, 224 px", (7, 7))):
    if name.startswith("the paper") and g == grid:
        continue  # this run is on the paper's grid already
    shown = (val_mask[0].cpu() if g == grid else masking.sample_masks(
        1, g, "multiblock", torch.Generator().manual_seed(SEED))[0]).clone()
    centre, corner = (g[0] // 2, g[1] // 2), (0, 0)
    shown[centre], shown[corner] = True, True  # both cells are targets in the picture
    grids[name] = {"mask": shown, "reach": {
        label: (cell, analysis.predictor_influence(trained.predictor.cpu(), g, cell, channels))
        for label, cell in (("centre", centre), ("corner", corner))}}
picture = torch.nn.functional.interpolate(pictures[:1], size=(224, 224), mode="bilinear")[0]
fig = viz.fig_reach_on_grids(picture, grids)
run.savefig(fig, "predictor_reach_masked")
plt.show()
run.log(mean_cosine_trained=agreement["trained"]["cosine"].mean().item(),
        mean_cosine_random_init=agreement["random init"]["cosine"].mean().item(),
        mean_cosine_mean_target_trained=agreement["trained"]["mean_cosine"].mean().item(),
        mean_cosine_mean_target_random_init=agreement["random init"][
            "mean_cosine"].mean().item())

# %% [markdown]
# How to read it: the predictor uses the context where its line lies above the dotted line
# of always predicting the mean target (printed above); a high cosine of both says only that
# the targets are alike. A cell next to the context is usually easier than one deep in a
# block, and a target whose whole reach is hidden is predicted from the mask token and the
# predictor's biases alone. Three 3x3 layers see a 7x7 window: the whole of a 4x4 grid from
# any cell, but only 4x4 cells from a corner of the paper's 7x7 grid (the figure above).

# %% [markdown]
# ## What keeps it from collapsing: three ingredients, not one
#
# Nothing in the loss forbids the trivial solution: if the context encoder, the predictor and
# the target encoder all output one constant vector, the loss is 0. Three choices stand
# against it, and they are separate mechanisms:
#
# - **A stop-gradient on the target.** The loss is not minimised through the target
#   features; otherwise both branches could move towards each other, and towards a
#   constant, in the same step.
# - **A predictor between the branches.** The context encoder is asked to make the target
#   *predictable*, not to equal it. In CNN-JEPA it is also the only path from the visible
#   cells to the target cells: without it the context encoder gets no gradient at all.
# - **An EMA target.** The target is a slow average of the context encoder
#   ($\xi \leftarrow m\,\xi + (1 - m)\,\theta$, $m$ from 0.996 to 1), so the context
#   encoder chases a target that moves only as fast as the average lets it.
#
# Earlier work separates them: BYOL reported collapse with its target an exact copy of the
# online network; SimSiam trained with no moving average, the stop-gradient and the predictor
# sufficing, and collapsed when either was removed. Why any of this works is understood only
# for simplified (linear) networks (Tian, Chen and Ganguli 2021). Chapter 07 removes each
# ingredient in turn, on the same short run, and shows a run whose features kept their
# spread and yet did not beat random init: the diagnostics above catch a collapse, not every
# failure.
#
# ## Summary
#
# - One step (section 1, twenty lines, the same as `train.train_step`): masks, the sparse
#   context encoder on the visible cells, the mask token, the predictor, the loss on target
#   cells against the dense target encoder's features of the whole image, AdamW, the EMA.
# - The loss is smooth-L1 of L2-normalised vectors (the authors' code), equal to 1 - cos and to
#   half the squared L2 distance of the normalised vectors.
# - Section 6 compares the prediction with its target cell by cell, trained against the run's
#   initialisation and against always predicting the mean target (the `demo` run of
#   docs/results/demo, whose page names its commit: mean cosine 0.827 against 0.288 at random init;
#   yours, with the mean-target baseline, is printed above), by the cell's distance from the
#   context and on the image.
# - AdamW with a warm-up then cosine learning rate; the target follows the context encoder by an
#   EMA whose momentum rises from 0.996 to 1.
# - Complete collapse shows as a per-channel std near 0, dimensional collapse as an effective
#   rank far below what the rows can span (the rank is scale-free: blind to complete
#   collapse); the stop-gradient, the predictor and the EMA target make collapse unlikely, not
#   impossible (chapter 07 tests each).
#
# ## Check your understanding
#
# 1. Why does the target encoder receive no gradient?
#    <details><summary>Answer</summary>
#
#    It is the regression target of the step. A gradient through it would let both branches move
#    towards each other, and towards a constant, in the same step; the EMA moves it slowly
#    instead.
#
#    </details>
# 2. What does the momentum reaching 1 at the end of training do?
#    <details><summary>Answer</summary>
#
#    The target stops changing: the last steps regress onto a fixed target encoder, which is
#    also the encoder the probes read.
#
#    </details>
# 3. A run's per-channel std of the normalised target features falls to 0. What happened?
#    <details><summary>Answer</summary>
#
#    Every image gets the same feature vector: complete collapse. The loss can still look fine,
#    since a constant is perfectly predictable.
#
#    </details>
#
# ## Exercises
#
# 1. **Implement** the EMA update of section 3 for one pair of modules (the target follows
#    the online one, parameter by parameter, BatchNorm's running statistics untouched) and
#    check it against `Method.update_target`. After how many steps at $m = 0.996$ does the
#    target keep less than half of where it started?
#    <details><summary>Solution</summary>
#
#    $\xi \leftarrow m\,\xi + (1 - m)\,\theta$ for every parameter. A target whose online
#    network has moved away keeps $m^T$ of its start after $T$ steps: below a half once
#    $T > \ln 2 / -\ln m \approx 173$ steps at $m = 0.996$.
#
#    ```python
#    import copy
#    import math
#
#    import torch
#    from jepa_lite import methods
#    from jepa_lite.config import TrainConfig
#
#
#    def ema_by_hand(target, online, m):
#        with torch.no_grad():
#            for xi, theta in zip(target.parameters(), online.parameters()):
#                xi.mul_(m).add_(theta, alpha=1 - m)
#
#
#    torch.manual_seed(0)
#    cfg = TrainConfig().with_changes(arch="resnet10", predictor_layers=1)
#    model = methods.get("cnn-jepa").from_config(cfg)
#    with torch.no_grad():
#        for p in model.context_encoder.parameters():
#            p.add_(torch.randn_like(p))  # the online network has moved
#    target = copy.deepcopy(model.target_encoder)
#    ema_by_hand(target, model.context_encoder, 0.996)
#    model.update_target(0.996)
#    for a, b in zip(target.state_dict().values(), model.target_encoder.state_dict().values()):
#        assert torch.allclose(a, b, atol=1e-6)
#    steps = math.ceil(math.log(2) / -math.log(0.996))
#    assert 0.996 ** steps < 0.5 <= 0.996 ** (steps - 1)
#    print("steps until half the start is gone:", steps)
#    ```
#
#    </details>
# 2. Train with `--loss l2` (unnormalised features): what happens to the feature norms?
#    <details><summary>Hint</summary>
#
#    Without normalising, the loss can fall by making every feature smaller; watch the loss
#    together with the target features' norm.
#
#    </details>
# 3. Set the EMA momentum to 1.0 from the start (`--ema 1.0 1.0`, a frozen random target). Does
#    the loss still fall? What do the std and the effective rank do?
#    <details><summary>Hint</summary>
#
#    The context encoder can learn to predict a fixed random network's features, so the loss can
#    fall; but the probes read the target, which never leaves its random initialisation.
#
#    </details>
#
# ## References
#
# - Kalapos et al. (2024). CNN-JEPA: Self-Supervised Pretraining Convolutional Neural Networks
#   Using Joint Embedding Predictive Architecture.
# - Assran et al. (2023). Self-Supervised Learning From Images With a Joint-Embedding Predictive
#   Architecture (I-JEPA). CVPR 2023.
# - Grill et al. (2020). Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning
#   (BYOL). NeurIPS 2020.
# - Chen and He (2021). Exploring Simple Siamese Representation Learning (SimSiam). CVPR 2021.
# - Tian, Chen and Ganguli (2021). Understanding Self-Supervised Learning Dynamics without
#   Contrastive Pairs. ICML 2021.
#
# **Next:** chapter 05 measures what the encoder learned with frozen-feature probes.
