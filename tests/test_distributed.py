"""One process or many: the micro-batch sampler, seeded views, sparse SyncBN, and whole runs
under torchrun on the CPU (gloo), compared with the same run in one process."""

import multiprocessing
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from jepa_lite import distributed, train
from jepa_lite.checkpoint import load_checkpoint, read_metrics
from jepa_lite.data import folders, scenes
from jepa_lite.data.augment import CROP_ONLY
from jepa_lite.data.pipeline import MaskCollator
from jepa_lite.encoders import sparse
from jepa_lite.masking import sample_masks
from tests.pil_reference import SeededViews, mask_collate, view_transform

pytestmark = pytest.mark.slow  # 2-process gloo runs

SPEC = scenes.SyntheticSpec(classes=3, per_class=22, val_per_class=2, size=64, seed=1)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("dist") / "syn", SPEC)


# --------------------------------------------------------------------------- the sampler
class Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def micro_batches(n, batch, micro, world, rank, seed=0, epoch=0, start=0):
    s = distributed.MicroBatchSampler(Sized(n), batch, micro, seed, world, rank)
    s.set_epoch(epoch, start)
    out = list(s)
    assert len(out) == len(s)
    return out


@settings(max_examples=60, deadline=None)
@given(n=st.integers(8, 300), micro=st.integers(1, 8), world=st.sampled_from([1, 2, 4]),
       accumulation=st.integers(1, 3), seed=st.integers(0, 99), epoch=st.integers(0, 5))
def test_micro_batches_do_not_depend_on_the_world_size(n, micro, world, accumulation, seed,
                                                       epoch):
    batch = micro * world * accumulation
    if batch > n:
        return
    one = micro_batches(n, batch, micro, 1, 0, seed, epoch)  # one process accumulates all
    steps = n // batch
    assert len(one) == steps * world * accumulation
    ranks = [micro_batches(n, batch, micro, world, r, seed, epoch) for r in range(world)]
    for step in range(steps):
        chunk = one[step * world * accumulation:(step + 1) * world * accumulation]
        for r in range(world):  # rank r computes micro-batches r*A .. r*A + A - 1 of the step
            assert ranks[r][step * accumulation:(step + 1) * accumulation] == \
                chunk[r * accumulation:(r + 1) * accumulation]
        images = [d.index for mb in chunk for d in mb]
        assert len(set(images)) == batch  # a step never repeats an image
        # every micro-batch (so every rank) draws its own masks (the authors' code draws the
        # same masks on every GPU)
        assert len({mb[0].batch_seed for mb in chunk}) == len(chunk)
        for mb in chunk:
            assert len(mb) == micro and len({d.batch_seed for d in mb}) == 1
            assert len({d.seed for d in mb}) == micro
    every = [d.index for mb in one for d in mb]
    assert len(set(every)) == len(every)  # nor does an epoch
    # a checkpoint at step k: the rest of the epoch is what follows step k
    k = steps // 2
    assert micro_batches(n, batch, micro, 1, 0, seed, epoch, start=k) == \
        one[k * world * accumulation:]


def test_epochs_and_seeds_draw_other_permutations():
    a, b = micro_batches(64, 16, 4, 1, 0, epoch=0), micro_batches(64, 16, 4, 1, 0, epoch=1)
    c = micro_batches(64, 16, 4, 1, 0, seed=1, epoch=0)
    d = micro_batches(64, 16, 4, 1, 0, seed=0, epoch=1)
    assert a != b and a != c and c != d  # seed 1 epoch 0 is not seed 0 epoch 1


@pytest.mark.parametrize("batch,micro,world,fix", [
    (32, 16, 3, "another number of processes"), (30, 8, 1, "--micro-batch 6"),
    (32, 12, 2, "--micro-batch 8")])
def test_a_batch_that_does_not_split_is_explained(batch, micro, world, fix):
    with pytest.raises(ValueError, match=f"global batch {batch} does not split into {world} "
                                         f"process.*{fix}"):
        distributed.check_batch(batch, micro, world)


def test_seeds_are_spread():
    seeds = {distributed.mix(0, e, s) for e in range(30) for s in range(30)}
    assert len(seeds) == 900 and all(0 <= s < 2**63 for s in seeds)


# --------------------------------------------------------------------------- seeded views
def loader_batches(root, workers):
    folder = folders.image_folder(root, "train")
    sampler = distributed.MicroBatchSampler(folder, 16, 8, seed=3)
    sampler.set_epoch(2)
    loader = DataLoader(SeededViews(folder, view_transform(CROP_ONLY, 64)), batch_sampler=sampler,
                        num_workers=workers, collate_fn=mask_collate(MaskCollator((2, 2), "mixed")),
                        generator=torch.Generator())  # the loader's own base seed: not global
    return list(loader)


def test_views_and_masks_do_not_depend_on_the_workers(root):
    torch.manual_seed(123)  # the caller's random stream ...
    before = torch.get_rng_state()
    zero = loader_batches(root, 0)
    assert torch.equal(before, torch.get_rng_state())  # ... is left alone
    two = loader_batches(root, 2)
    assert len(zero) == len(two) == 8
    for (xa, ma), (xb, mb) in zip(zero, two):
        assert torch.equal(xa, xb) and torch.equal(ma, mb)
    # and they are random: other micro-batches get other crops and masks
    assert not torch.equal(zero[0][1], zero[1][1]) or not torch.equal(zero[0][0], zero[1][0])


# --------------------------------------------------------------------------- 2 processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, *args, world=2):
    """Run ``fn(rank, world, *args)`` in ``world`` processes joined as torchrun would.

    The processes are forked from a server that imported torch and the package once for the
    whole session (``forkserver``), instead of each importing them anew (about 3 s each on
    2 cores); the server never ran a parallel region, so the forks are clean. The ranks see
    the environment the server started with: a variable a test sets later does not reach
    them (``_entry`` sets what torchrun would)."""
    multiprocessing.set_forkserver_preload(["tests.test_distributed"])
    port = free_port()
    mp.start_processes(_entry, args=(world, port, fn, args), nprocs=world, join=True,
                       start_method="forkserver")


def _entry(rank, world, port, fn, args):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        fn(rank, world, *args)
    finally:
        distributed.teardown()


def _sync_bn_worker(rank, world, out):
    distributed.setup(torch.device("cpu"))
    g = torch.Generator().manual_seed(7)
    x = torch.randn(world * 3, 5, 8, 8, dtype=torch.float64, generator=g) * 2 + 1
    m = sample_masks(world * 3, (4, 4), "random", generator=g)
    x = x * (~m).repeat_interleave(2, 1).repeat_interleave(2, 2).unsqueeze(1)  # a conv's output
    mine = slice(3 * rank, 3 * rank + 3)
    state = sparse.MaskState()
    bn = sparse.SparseBatchNorm2d(state, 5, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2, 5))
        bn.bias.copy_(torch.linspace(-1, 1, 5))
    sparse.synchronize_batchnorm(torch.nn.Sequential(bn))
    xr = x[mine].clone().requires_grad_(True)
    state.set(m[mine], xr.dtype)
    y = bn(xr)
    w = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(rank))
    (y * w).sum().backward()
    torch.save({"y": y.detach(), "gx": xr.grad, "gw": bn.weight.grad, "gb": bn.bias.grad,
                "rm": bn.running_mean, "rv": bn.running_var, "x": x, "m": m},
               out / f"rank{rank}.pt")


def test_sparse_sync_bn_equals_one_batchnorm_over_all_ranks(tmp_path):
    spawn(_sync_bn_worker, tmp_path)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    x, m = parts[0]["x"], parts[0]["m"]
    state = sparse.MaskState()
    bn = sparse.SparseBatchNorm2d(state, 5, momentum=0.3).double()  # one process, all images
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2, 5))
        bn.bias.copy_(torch.linspace(-1, 1, 5))
    xs = x.clone().requires_grad_(True)
    state.set(m, xs.dtype)
    y = bn(xs)
    w = torch.cat([torch.randn(parts[r]["y"].shape, dtype=torch.float64,
                               generator=torch.Generator().manual_seed(r)) for r in range(2)])
    (y * w).sum().backward()
    assert torch.allclose(torch.cat([p["y"] for p in parts]), y.detach(), atol=1e-12)
    assert torch.allclose(torch.cat([p["gx"] for p in parts]), xs.grad, atol=1e-12)
    # weight and bias gradients: DDP would sum them over ranks
    assert torch.allclose(parts[0]["gw"] + parts[1]["gw"], bn.weight.grad, atol=1e-12)
    assert torch.allclose(parts[0]["gb"] + parts[1]["gb"], bn.bias.grad, atol=1e-12)
    for p in parts:
        assert torch.allclose(p["rm"], bn.running_mean) and torch.allclose(p["rv"], bn.running_var)
    # masked zeros are not counted: a plain BatchNorm over the zero-filled input differs
    assert not torch.allclose(bn.running_mean,
                              0.7 * torch.zeros(5, dtype=torch.float64)
                              + 0.3 * (x * (~m).repeat_interleave(2, 1).repeat_interleave(2, 2)
                                       .unsqueeze(1)).mean((0, 2, 3)))


def tiny(**kw) -> train.TrainConfig:
    base = dict(arch="resnet10", image_size=64, epochs=2, batch_size=32, micro_batch=16,
                warmup_epochs=1, checkpoint_every=1, log_every=1, seed=4, workers=0)
    jepa = "jepa" in kw.get("method", "cnn-jepa")
    return train.TrainConfig().with_changes(**{**base, **kw},
                                            **({"predictor_layers": 1} if jepa else {}))


def _pretrain_worker(rank, world, cfg, root, out, resume, stop_at_step):
    def stop(run, info):  # a preemption in the middle of an epoch
        if info.step == stop_at_step:
            raise KeyboardInterrupt

    try:
        train.pretrain(cfg, root, out, resume=resume, device="cpu",
                       on_step=stop if stop_at_step is not None else None)
    except KeyboardInterrupt:
        pass


def weights(path):
    """The parameters of a checkpoint (BatchNorm running buffers excluded: they are per rank)."""
    model = load_checkpoint(path)["model"]
    return {k: v for k, v in model.items() if "running_" not in k and "num_batches" not in k}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), (k, (wa[k] - wb[k]).abs().max())


def one_process(cfg, root, out, resume=False, stop_at_step=None):
    """The same run in this process, with one thread, as each torchrun process has."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _pretrain_worker(0, 1, cfg, root, out, resume, stop_at_step)
    finally:
        torch.set_num_threads(threads)


def test_mid_epoch_resume_under_ddp_continues_the_same_run(root, tmp_path):
    cfg = tiny(checkpoint_every_steps=1)
    one_process(cfg, root, tmp_path / "straight")
    # two processes, stopped in the middle of epoch 2 (global step 2 of 0..3), then resumed
    spawn(_pretrain_worker, cfg, root, tmp_path / "ddp", False, 2)
    ckpt = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert (ckpt["epoch"], ckpt["step"], ckpt["world_size"]) == (1, 0, 2)
    spawn(_pretrain_worker, cfg, root, tmp_path / "ddp", True, 3)
    ckpt = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 1)  # a mid-epoch checkpoint
    spawn(_pretrain_worker, cfg, root, tmp_path / "ddp", True, None)
    assert_same_weights(tmp_path / "straight" / "last.pt", tmp_path / "ddp" / "last.pt")
    a, b = (read_metrics(tmp_path / d) for d in ("straight", "ddp"))
    assert [r["epoch"] for r in b] == [1, 2]
    for ra, rb in zip(a, b):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-6)
        assert ra["lr"] == rb["lr"] and ra["momentum"] == rb["momentum"]
        assert ra["target_std"] == rb["target_std"]  # micro-batch 0 is on rank 0 in both


def test_resume_on_another_world_size(root, tmp_path):
    cfg = tiny()
    one_process(cfg, root, tmp_path / "one")
    spawn(_pretrain_worker, cfg, root, tmp_path / "two", False, None)
    assert_same_weights(tmp_path / "one" / "last.pt", tmp_path / "two" / "last.pt")
    for name, snapshot, processes in (("one-then-two", tmp_path / "one" / "epoch_0001.pt", 2),
                                      ("two-then-one", tmp_path / "two" / "epoch_0001.pt", 1)):
        (tmp_path / name).mkdir()
        shutil.copy(snapshot, tmp_path / name / "last.pt")
        if processes == 2:
            spawn(_pretrain_worker, cfg, root, tmp_path / name, True, None)
        else:
            one_process(cfg, root, tmp_path / name, resume=True)
        assert load_checkpoint(tmp_path / name / "last.pt")["world_size"] == processes
        assert_same_weights(tmp_path / "one" / "last.pt", tmp_path / name / "last.pt")


def _sync_bn_run_worker(rank, world, cfg, root, out):
    train.pretrain(cfg, root, out, device="cpu")


def test_sync_bn_trains_under_ddp_and_differs_from_per_rank_statistics(root, tmp_path):
    spawn(_sync_bn_run_worker, tiny(epochs=1, warmup_epochs=0, sync_bn=True), root,
          tmp_path / "sync")
    spawn(_sync_bn_run_worker, tiny(epochs=1, warmup_epochs=0), root, tmp_path / "per-rank")
    a, b = weights(tmp_path / "sync" / "last.pt"), weights(tmp_path / "per-rank" / "last.pt")
    assert all(torch.isfinite(v).all() for v in a.values())
    assert any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="--sync-bn.*single process.*torchrun"):
        train.pretrain(tiny(sync_bn=True), root, tmp_path / "one", device="cpu")


# --------------------------------------------------------------------------- torchrun
def run_cli(*args, env=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


# I-JEPA on its ViT, with a predictor as small (issue 34: its masks, drawn per micro-batch,
# make the same split exact)
METHOD_ARGS = {"cnn-jepa": ["--arch", "resnet10", "--predictor-layers", "1"],
               "ijepa": ["--method", "ijepa", "--arch", "vit_micro", "--min-keep", "0",
                         "--predictor-width", "64", "--predictor-depth", "1"]}


@pytest.mark.parametrize("method", list(METHOD_ARGS))
def test_torchrun_equals_one_process_with_accumulation(root, tmp_path, method):
    """The user's commands: `jepa-lite pretrain --batch-size 32 --micro-batch 16` in one
    process (2 micro-batches accumulated) and under `torchrun --nproc_per_node 2` (one
    each). With the same thread count per process the weights are bit for bit the same: the
    same images, crops and masks per micro-batch, and a sum of two halved gradients is exact
    in either order. (Other thread counts, or GPUs, reduce convolutions in another order;
    AdamW then turns ~1e-7 gradient differences of near-zero gradients into differences up
    to the learning rate: 2.8e-3 after 4 steps at lr 0.01, measured with 2 threads vs 1.)"""
    common = ["--data-root", str(root), *METHOD_ARGS[method], "--image-size", "64",
              "--epochs", "2", "--batch-size", "32", "--micro-batch", "16",
              "--warmup-epochs", "1", "--device", "cpu", "--workers", "1", "--log-every", "1"]
    one = run_cli("-m", "jepa_lite.pretrain", *common, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = run_cli("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                  "-m", "jepa_lite.pretrain", *common, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("done:") == 1  # rank 0 alone reports (and writes)
    assert_same_weights(tmp_path / "one" / "last.pt", tmp_path / "two" / "last.pt")
    a, b = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["processes"] for r in a + b] == [1, 1, 2, 2]
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-6)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        [".lock", "config.json", "last.pt", "metrics.jsonl"]
    # a global batch that does not split over the processes is refused before any work
    if method != "cnn-jepa":
        return  # the refusal below is the loop's, the same for every method
    bad = run_cli("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                  "-m", "jepa_lite.pretrain", *common[:-6], "--micro-batch", "12",
                  "--device", "cpu", "--out", str(tmp_path / "bad"))
    assert bad.returncode != 0
    assert "global batch 32 does not split into 2 process(es) x micro-batches of 12" in bad.stderr
    assert "--micro-batch 8" in bad.stderr


# --------------------------------------------------------------------------- SimCLR, gathered
def _nt_xent_worker(rank, world, out, detach):
    from jepa_lite import losses

    distributed.setup(torch.device("cpu"))
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 4).double()
    g = torch.Generator().manual_seed(1)
    xa, xb = torch.randn(2, world * 5, 6, dtype=torch.float64, generator=g)
    mine = slice(5 * rank, 5 * rank + 5)

    def gather(t):  # detach=True: the gather of lightly #1176-era code, no gradient through it
        return distributed.all_gather_with_grad(t.detach() if detach else t)

    loss = losses.nt_xent(head(xa[mine]), head(xb[mine]), 0.1, gather=gather)
    loss.backward()
    grads = [distributed.all_reduce_sum(p.grad) / world for p in head.parameters()]  # as DDP
    torch.save({"loss": loss.detach(), "grads": grads, "xa": xa, "xb": xb},
               out / f"rank{rank}.pt")


@pytest.mark.parametrize("detach", [False, True])
def test_simclr_gathered_loss_equals_one_process_on_the_whole_batch(tmp_path, detach):
    from jepa_lite import losses

    spawn(_nt_xent_worker, tmp_path, detach)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 4).double()
    loss = losses.nt_xent(head(parts[0]["xa"]), head(parts[0]["xb"]), 0.1)
    loss.backward()
    # the mean of the ranks' losses is the loss over the whole batch ...
    assert torch.allclose((parts[0]["loss"] + parts[1]["loss"]) / 2, loss, atol=1e-12)
    # ... and DDP's average of the gradients is its gradient, only when the gather carries one
    same = all(torch.allclose(g, p.grad, atol=1e-12)
               for g, p in zip(parts[0]["grads"], head.parameters(), strict=True))
    assert same != detach


def _methods_under_ddp_worker(rank, world, root, out):
    for method, extra in (("simclr", {}), ("cjepa", {"strategy": "mixed"})):
        cfg = tiny(method=method, epochs=1, warmup_epochs=0, micro_batch=8, **extra)
        train.pretrain(cfg, root, out / method, device="cpu")


def test_simclr_and_cjepa_train_under_ddp(root, tmp_path):
    spawn(_methods_under_ddp_worker, root, tmp_path)
    for method in ("simclr", "cjepa"):
        rows = read_metrics(tmp_path / method)
        assert len(rows) == 1 and rows[0]["processes"] == 2 and rows[0]["loss"] == rows[0]["loss"]
