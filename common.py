"""Plumbing shared by pretrain.py, linear_eval.py and supervised_baseline.py.

- running a script's main() with one-line errors (the parser itself is in cli.py);
- device, seeding, and the run directory (config.json, metrics.jsonl, atomic checkpoints);
- feature extraction and the weighted kNN monitor;
- `fit_classifier`, the one training loop for "encoder + linear layer", used frozen by
  linear evaluation, unfrozen by fine-tuning and from scratch by the supervised baseline.

Nothing here parses arguments, seeds or prints at import.
"""
import ctypes
import ctypes.util
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import datetime

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import augment
import dataloader
import dist
import logs
# the optimiser pieces live in optim.py; their names stay importable from here for older callers
from optim import LARS, lars, lr_at, scaled_lr, set_lr, sgd  # noqa: F401
# The parser, its checked types and the supervised recipe live in cli.py (no torch, so that -h
# answers at once); what the scripts read from common after the parse stays importable here.
from cli import (SUPERVISED_LR, SUPERVISED_WD, Parser, batch_size, fraction,  # noqa: F401
                 nonneg_float, nonneg_int, parent_parser, positive_float, positive_int, script_parser)


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit status 2, no traceback."""


def run_cli(main, parser, argv=None, run_dir=lambda args: getattr(args, "out_dir", None)):
    """Parse argv, run main(args); a UserError or DataError becomes one line and exit 2, Ctrl-C
    one line saying what run_dir(args) holds to resume from."""
    args = parser.parse_args(argv)
    keep_freed_memory()
    try:
        main(args)
        return 0
    except (UserError, dataloader.DataError) as e:
        where = f" (rank {dist.rank()})" if dist.world_size() > 1 else ""
        parser.exit(2, f"{parser.prog}: error{where}: {e}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"\n{parser.prog}: interrupted; {logs.kept_text(run_dir(args))}\n")
    finally:  # under torchrun: leave the process group, so that a rank's error ends the job
        dist.shutdown()


# ---------------------------------------------------------------------------- environment

def keep_freed_memory(max_block=64 << 20):
    """Let the C allocator reuse freed blocks of up to `max_block` bytes instead of handing them
    back to the operating system. Returns True where it applied (Linux with glibc).

    Every batch allocates dozens of fresh tensors of 1-3 MB (augmented views, activations).
    glibc maps blocks that large straight from the OS and unmaps them when they are freed, so
    the next tensor of that size pays one page fault per 4 KiB page. Keeping them, as PyTorch's
    caching allocator does on the GPU and jemalloc or tcmalloc do on the CPU, makes the batched
    augmentation about 1.5x faster on a 2-core CPU (bench.py). It does nothing elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
        return bool(libc.mallopt(M_MMAP_THRESHOLD, max_block) and libc.mallopt(M_TRIM_THRESHOLD, 4 * max_block))
    except (OSError, AttributeError):  # no glibc (e.g. musl): keep the defaults
        return False


def resolve_device(name):
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but PyTorch sees no CUDA GPU (use --device cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def set_backends(args, device, benchmark=False):
    """cuDNN's settings for this run. benchmark: let cuDNN time its kernels and keep the fastest
    (pretrain.py: its input shapes never change), which makes results depend on that choice;
    --deterministic turns it off and asks for deterministic algorithms (warn_only: the few ops
    without one warn instead of failing). The CPU needs neither."""
    if device.type != "cuda":
        return
    if getattr(args, "deterministic", False):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = benchmark


def load_scaler(scaler, state, path):
    """Restore a GradScaler, across precisions: a checkpoint written without fp16 loss scaling
    (bf16, float32, a CPU: its scaler was disabled and saved nothing) resumed under fp16 (what
    --amp auto picks on a V100 or T4) starts a fresh scaler, with a note, instead of failing in
    GradScaler.load_state_dict; a disabled scaler ignores a saved state."""
    if scaler.is_enabled() and not state:
        logs.say(f"note: {path} was written without fp16 loss scaling; resuming under fp16 with a fresh GradScaler")
        return
    scaler.load_state_dict(state)


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state():
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def load_data(args):
    """load_cifar10 with the shared flags."""
    return dataloader.load_cifar10(args.data_dir, download=not args.no_download)


# ---------------------------------------------------------------------------- run directory

def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.abspath(__file__)), timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def tmp_name(path):
    """A temporary name beside `path` that is this process's own: several processes (ranks, jobs
    side by side) writing the same file never write into each other's temporary file."""
    return f"{path}.{os.getpid()}.tmp"


def write_json(path, obj):
    """Write JSON atomically: a reader never sees half a file, a crash never leaves one."""
    tmp = tmp_name(path)
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def check_writable(folder, flag="--out-dir"):
    """Refuse, before any work, a run directory that cannot be written: `folder` itself if it
    exists, else the folder it would be made in. The check writes and removes a probe, as
    permissions alone do not tell (root, a read-only file system); nothing is left behind."""
    import tempfile
    parent = os.path.abspath(folder)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"cannot write to {folder}: {parent} is a file; choose another {flag}")
    try:
        if parent == os.path.abspath(folder):
            tempfile.TemporaryFile(dir=parent).close()
        else:
            os.rmdir(tempfile.mkdtemp(dir=parent))
    except OSError as e:
        raise UserError(f"cannot write to {folder} ({e.strerror or e} in {parent}); choose another {flag}") from None


def state_dict_error(e):
    """torch's load_state_dict error in one line: 'missing keys: a, b; unexpected keys: c (+4 more)'
    instead of its first line, 'Error(s) in loading state_dict for ResNet:', which ends at the colon."""
    import re
    parts = []
    for line in str(e).splitlines()[1:]:
        line = line.strip().rstrip(". ")
        keys = re.match(r"(Missing|Unexpected) key\(s\) in state_dict: (.*)", line)
        if keys:
            names = [k.strip().strip('"') for k in keys.group(2).split(",")]
            more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
            parts.append(f"{keys.group(1).lower()} keys: {', '.join(names[:3])}{more}")
        elif line:
            parts.append(line)
    text = "; ".join(parts[:3]) + (f"; and {len(parts) - 3} more" if len(parts) > 3 else "")
    return text or (str(e).splitlines() or [""])[0]


def write_config(out_dir, args, script, device, **extra):
    """config.json: every resolved argument, the command line, versions, the device and the
    precision --amp resolved to on it, and any `extra` facts of the run; written first."""
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "config.json"), {
        "script": script, "args": vars(args), "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "torch": torch.__version__, "commit": git_commit(), "device": device_name(device),
        "threads": torch.get_num_threads(),  # CPU results can depend on it (the order of float sums)
        "precision": precision_name(amp_dtype(getattr(args, "amp", "off"), device)),
        "created": datetime.now().isoformat(timespec="seconds"), **extra})


def append_jsonl(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def truncate_jsonl(path, epochs):
    """Keep the first `epochs` lines: on resume, drop lines of epochs the checkpoint does not hold."""
    if os.path.exists(path):
        with open(path) as f:
            lines = f.readlines()[:epochs]
        with open(path, "w") as f:
            f.writelines(lines)


def fingerprint(state_dict):
    """A short SHA-256 of a state_dict's tensors: which weights a result was computed from."""
    import hashlib
    h = hashlib.sha256()
    for name, t in sorted(state_dict.items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def save_atomic(obj, path):
    tmp = tmp_name(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


# What to do about a resume checkpoint that cannot be used. Only checkpoint.pt is named: a run
# with its result written (encoder.pt, supervised.json, ...) is finished and never reads it.
RESUME_ADVICE = "delete it to restart the run from scratch, or choose another --out-dir"


def load_checkpoint(path, what="checkpoint", advice=None):
    """torch.load with a one-line error for a missing, foreign or truncated file; `advice` (what
    to do about it) ends the message."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {path} does not exist")
    todo = f"; {advice}" if advice else ""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, a text file, a pickle of something else
        first = (str(e).splitlines() or [""])[0][:120]
        raise UserError(f"{path} is not a readable {what} ({type(e).__name__}: {first}){todo}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a {what} of this project (it holds a {type(obj).__name__}){todo}")
    return obj


def resume_from(path, restore):
    """Load the resume checkpoint at `path` and hand it to restore(state). A file that cannot be
    read, or whose contents do not fit this run (a missing entry, tensors of another shape: an
    older version of the code), is one line that says what to do, not a traceback."""
    state = load_checkpoint(path, advice=RESUME_ADVICE)
    try:
        return restore(state)
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise UserError(f"{path} does not fit this run ({type(e).__name__}: {state_dict_error(e)[:300]}); "
                        f"{RESUME_ADVICE}") from None


# ---------------------------------------------------------------------------- optimisation

# SUPERVISED_LR, SUPERVISED_WD: the supervised recipe, in cli.py (the scripts' defaults).


# ---------------------------------------------------------------------------- self-supervised training

def amp_dtype(choice, device):
    """The autocast dtype that --amp asks for on `device`; None means float32 throughout.

    auto: bf16 on GPUs that support it, fp16 on older ones; on the CPU, bf16 only where the CPU
    has bf16 instructions (AVX512-BF16 or AMX, e.g. recent Xeons: about 1.6x faster for convnet
    and 2.2x for ResNet-18 on this project's 2-core test machine), because emulated bf16 is slower
    than float32."""
    if choice == "off":
        return None
    if device.type == "cuda":
        if choice == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return {"bf16": torch.bfloat16, "fp16": torch.float16}[choice]
    if choice == "fp16":
        raise UserError("--amp fp16 needs a CUDA GPU; on the CPU use --amp bf16 or --amp off")
    return torch.bfloat16 if choice == "bf16" or cpu_has_bf16() else None


def cpu_has_bf16():
    """Whether this CPU computes in bf16 natively (torch's own check, a private helper)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def precision_name(dtype):
    return str(dtype).replace("torch.", "") if dtype else "fp32"


def autocast(device, dtype):
    """torch.autocast on `device` in `dtype` (amp_dtype); None: off, everything in float32."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class TwoViews:
    """Yields the two augmented views (x1, x2) of each minibatch and the images' indices in
    `images` (idx, which MoCo uses to mask an image's own stale keys), all on the device.

    batched: the subset lives on the device as one uint8 tensor; each batch is augmented there
    with augment.BatchedAugment. torchvision: the reference PIL pipeline in DataLoader workers.
    Both drop the last incomplete batch (every step then contrasts the same number of images)
    and shuffle with a generator seeded by (seed, epoch), so a resumed run sees the same order.

    Several processes (torchrun): every rank shuffles with the same generator, so the global
    order is that of one process, and takes its share (bs / world size images, in rank order)
    of each step's global batch; each rank augments with its own random stream.
    """

    def __init__(self, images, args, device):
        self.bs, self.seed, self.device = args.bs, args.seed, device
        self.steps = len(images) // args.bs
        self.rank, self.world = dist.rank(), dist.world_size()
        self.share = args.bs // self.world  # images per rank and step
        self.batched = args.aug_backend in ("auto", "batched")
        self.small_crops = getattr(args, "small_crops", 0)  # multi-crop: extra low-resolution views
        scale = (getattr(args, "crop_min", augment.CROP_SCALE[0]), 1.0)  # the large views' crop areas
        if self.batched:
            self.x = dataloader.to_tensor_batch(images).to(device)  # (N, 3, 32, 32) uint8
            self.aug = augment.BatchedAugment(args.aug, scale=scale).to(device)
            self.small_aug = augment.BatchedAugment(args.aug, size=getattr(args, "small_size", augment.SMALL_CROP_SIZE),
                                                    scale=augment.SMALL_CROP_SCALE).to(device)
        else:
            self.dataset = dataloader.TwoViewDataset(images, augment.get_preset(args.aug, scale=scale))
            self.workers = args.workers

    def epoch(self, epoch):
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        if self.batched:
            order = torch.randperm(len(self.x), generator=g).to(self.device)
            mine = self.rank * self.share  # this rank's first image in each step's global batch
            for i in range(self.steps):
                idx = order[i * self.bs + mine:i * self.bs + mine + self.share]  # (bs / world,)
                x1, x2 = self.aug(torch.cat([self.x[idx]] * 2)).chunk(2)  # one call, parameters drawn per sample
                if self.small_crops:  # (K*n, 3, s, s): crop c of image k at row c*n + k
                    yield x1, x2, idx, self.small_aug(torch.cat([self.x[idx]] * self.small_crops))
                else:
                    yield x1, x2, idx
        else:  # one sampler for any number of processes (a DataLoader given `generator` would draw its
            # workers' seed from it first, so one process would not shuffle as the union of two ranks)
            yield from self._loader(DataLoader(
                self.dataset, batch_sampler=_RankBatches(len(self.dataset), self.steps, self.bs, self.rank,
                                                         self.world, g),
                num_workers=self.workers, pin_memory=self.device.type == "cuda", persistent_workers=False))

    def _loader(self, loader):
        for x1, x2, idx in loader:
            yield (x1.to(self.device, non_blocking=True), x2.to(self.device, non_blocking=True),
                   idx.to(self.device, non_blocking=True))


class _RankBatches(torch.utils.data.Sampler):
    """The torchvision path's batches of one rank: its share of each step's global batch, in the
    global order drawn from `generator` (the same on every rank)."""

    def __init__(self, n, steps, bs, rank, world, generator):
        self.n, self.steps, self.bs, self.rank, self.world, self.g = n, steps, bs, rank, world, generator

    def __len__(self):
        return self.steps

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.g).tolist()
        share = self.bs // self.world
        for i in range(self.steps):
            start = i * self.bs + self.rank * share
            yield order[start:start + share]


def ssl_step(model, x1, x2, optimizer, scaler, dtype, idx=None, small=None, *, memory_format=torch.channels_last):
    """One step of a self-supervised objective: forward of the two views (under autocast when
    dtype is set; idx: the images' indices, see TwoViews), backward, optimiser step. Returns (loss, stats) as detached tensors on the
    device: reading them (.item()) would make the host wait for the GPU every step, so the
    caller sums them and reads them once an epoch. memory_format: the model's layout (pretrain.py
    moves it to channels_last; bench.py also times PyTorch's default, torch.contiguous_format)."""
    x1, x2 = (x.contiguous(memory_format=memory_format) for x in (x1, x2))
    extra = () if small is None else (small.contiguous(memory_format=memory_format),)  # multi-crop views
    with autocast(x1.device, dtype):
        loss, stats = model(x1, x2, idx, *extra)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), stats


# ---------------------------------------------------------------------------- features and kNN

# The kNN monitor's memory bank: one fixed stratified 10% of the training split (500 images per
# class), the same for every run whatever its --fraction and --seed, so that kNN accuracy moves
# only with the features (a bank of 2,500 images gives an untrained encoder 41.5%, one of 12,500
# gives it 48.2%). Its labels are used, so it is a monitor, not an evaluation protocol.
KNN_BANK_FRACTION, KNN_BANK_SEED = 0.1, 0


def knn_bank(y_train):
    """Indices of the kNN monitor's memory bank in the training split (see KNN_BANK_FRACTION)."""
    return dataloader.stratified_subset(y_train, KNN_BANK_FRACTION, KNN_BANK_SEED)


def normalize_batch(x_uint8):
    """uint8 (B, 3, 32, 32) -> float (B, 3, 32, 32) standardised with the CIFAR-10 statistics:
    augment.eval_transform() without the trip through PIL."""
    mean = augment.constant(augment.CIFAR_MEAN, x_uint8.device).view(1, 3, 1, 1)  # made once per device
    std = augment.constant(augment.CIFAR_STD, x_uint8.device).view(1, 3, 1, 1)
    return (x_uint8.float() / 255 - mean) / std


@torch.no_grad()
def extract_features(net, images, device, bs=512, dtype=None, timed=None):
    """Features of uint8 images (N, 32, 32, 3) through `net` in eval mode, as float32 on the CPU.
    dtype: autocast dtype (amp_dtype) or None for float32. timed(images, seconds): called once,
    with the time of the second batch (the first pays for warm-up), to say how long the rest takes."""
    was_training = net.training
    net.eval()
    x = dataloader.to_tensor_batch(images)
    feats = []
    for i in range(0, len(x), bs):
        t0 = time.monotonic()
        batch = normalize_batch(x[i:i + bs].to(device, non_blocking=True))
        with autocast(device, dtype):
            feats.append(net(batch).float().cpu())  # .cpu() waits for the device: the time is real
        if timed and i == bs:
            timed(len(batch), time.monotonic() - t0)
    net.train(was_training)
    return torch.cat(feats)  # (N, D)


@torch.no_grad()
def knn_accuracy(train_feats, train_labels, test_feats, test_labels, k=200, t=0.1, num_classes=10, chunk=1000):
    """Weighted k-nearest-neighbour top-1 (%) with cosine similarity (Wu et al. 2018, Sec. 3.4):
    each of the k nearest training features votes for its class with weight exp(sim / t)."""
    train_feats = F.normalize(train_feats.float(), dim=1)
    test_feats = F.normalize(test_feats.float(), dim=1)
    train_labels = torch.as_tensor(train_labels, device=train_feats.device)
    test_labels = torch.as_tensor(test_labels, device=test_feats.device)
    k = min(k, len(train_feats))
    correct = 0
    for i in range(0, len(test_feats), chunk):
        sim = test_feats[i:i + chunk] @ train_feats.T  # (chunk, N_train)
        top_sim, top_idx = sim.topk(k, dim=1)  # (chunk, k)
        votes = torch.zeros(len(top_sim), num_classes, device=sim.device)
        votes.scatter_add_(1, train_labels[top_idx], (top_sim / t).exp())
        correct += (votes.argmax(1) == test_labels[i:i + chunk]).sum().item()
    return 100.0 * correct / len(test_feats)


# ---------------------------------------------------------------------------- classifier training

def accuracy(logits, labels, topk=(1, 5)):
    """Number of samples whose label is among the top-k logits, for each k."""
    top = logits.topk(max(topk), dim=1).indices  # (B, maxk)
    hit = top == labels[:, None]
    return [hit[:, :k].any(dim=1).sum().item() for k in topk]


@torch.no_grad()
def evaluate(model, batches):
    """Top-1 and top-5 accuracy (%) of `model` over the (x, y) batches."""
    was_training = model.training
    model.eval()
    n = top1 = top5 = 0
    for x, y in batches:
        c1, c5 = accuracy(model(x).float(), y)
        top1, top5, n = top1 + c1, top5 + c5, n + len(y)
    model.train(was_training)
    return 100.0 * top1 / n, 100.0 * top5 / n


@torch.no_grad()
def confusion_matrix(model, batches, num_classes=10):
    """Counts [true class][predicted class] of `model` over the (x, y) batches, as nested lists
    (JSON-ready): the per-class accuracies and the classes it confuses."""
    was_training = model.training
    model.eval()
    counts = None
    for x, y in batches:
        pred = model(x).float().argmax(1)
        batch = torch.bincount(y * num_classes + pred, minlength=num_classes ** 2)
        counts = batch if counts is None else counts + batch
    model.train(was_training)
    return counts.view(num_classes, num_classes).tolist()


def fit_classifier(model, train_batches, test_batches, *, epochs, steps_per_epoch, lr, wd,
                   device, dtype=None, checkpoint_path=None, metrics_path=None, recipe=None, desc="train",
                   tb_dir=None, test_every=1):
    """Train `model` (inputs -> logits) with cross-entropy, SGD + momentum and a per-step cosine
    schedule; return the history and the test top-1/top-5 of the LAST epoch (no picking by test).

    train_batches(epoch) and test_batches() yield (x, y) on the device. Only parameters with
    requires_grad are optimised, so a frozen encoder inside `model` stays as it is; whether the
    encoder runs in train or eval mode is the model's business (see linear_eval.Classifier).
    With checkpoint_path the loop saves after every epoch and resumes from it, provided the
    checkpoint was made with the same `recipe` (a dict of the settings that define the run).
    dtype: autocast dtype of the forward pass (amp_dtype), None for float32. tb_dir: also log
    each epoch's numbers (and the final test accuracy) as TensorBoard events there (logs.Scalars).
    The test accuracy is watched every `test_every` epochs and at the last one (the result); it
    never changes the training (see `test_every`).
    Prints a progress line (loss, train accuracy, lr, seconds, time left) for the first epoch,
    the last, and in between every `epochs / 25` epochs or after 2 minutes without one: a log
    gets it whether or not stdout is a terminal (the tqdm bar only shows on one).
    """
    from tqdm import tqdm
    optimizer = sgd(model.parameters(), lr, wd)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    total = epochs * steps_per_epoch
    start, history = 0, []
    if checkpoint_path and os.path.exists(checkpoint_path):
        def restore(state):
            if state.get("recipe") != recipe:
                diff = {k: (state.get("recipe", {}).get(k), v) for k, v in (recipe or {}).items()
                        if state.get("recipe", {}).get(k) != v}
                raise UserError(f"{checkpoint_path} belongs to a run with other settings (checkpoint vs now: "
                                f"{diff}); choose another --out-dir")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            load_scaler(scaler, state.get("scaler", {}), checkpoint_path)  # older checkpoints have none
            set_rng_state(state["rng"])
            return state["epoch"], state["history"]
        start, history = resume_from(checkpoint_path, restore)
        if metrics_path:
            truncate_jsonl(metrics_path, start)
        logs.say(f"resuming {desc} from epoch {start}")
    progress = logs.Progress(total, start * steps_per_epoch, device)
    every, last_line = max(1, -(-epochs // 25)), time.monotonic()
    scalars = logs.Scalars(tb_dir, desc, resume_step=start + 1 if start else None) if tb_dir else None
    for epoch in range(start, epochs):
        model.train()
        t0, seen = time.time(), 0
        loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
        bar = tqdm(train_batches(epoch), total=steps_per_epoch, desc=f"{desc} {epoch + 1}/{epochs}",
                   leave=False, disable=None)
        for i, (x, y) in enumerate(bar):
            set_lr(optimizer, lr_at(epoch * steps_per_epoch + i, total, lr))
            with autocast(device, dtype):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            seen += len(y)  # sums stay on the device: no host-device sync inside an epoch
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            early = progress.step(len(y))
            if early:
                logs.say(f"{desc}: {early}")
        record = {"epoch": epoch + 1, "loss": loss_sum.item() / seen, "lr": optimizer.param_groups[0]["lr"],
                  "train_acc": 100.0 * correct.item() / seen, "seconds": time.time() - t0}
        # watched, never used to choose anything: the result is the last epoch's
        if (epoch + 1) % test_every == 0 or epoch + 1 == epochs:
            record["test_top1"], record["test_top5"] = evaluate(model, test_batches())
        history.append(record)
        if metrics_path:
            append_jsonl(metrics_path, record)
        if scalars:
            scalars.add(record, epoch + 1)
        if checkpoint_path:
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "epoch": epoch + 1, "history": history, "rng": rng_state(), "recipe": recipe}, checkpoint_path)
        if (epoch == start or epoch + 1 == epochs or (epoch + 1) % every == 0
                or time.monotonic() - last_line >= 120):
            parts = [f"{desc} epoch {epoch + 1}/{epochs}", f"loss {record['loss']:.4f}",
                     f"train acc {record['train_acc']:.2f}%"]
            if "test_top1" in record:
                parts.append(f"test acc {record['test_top1']:.2f}%")
            parts += [f"lr {record['lr']:.4f}", f"{record['seconds']:.1f} s"]
            eta = progress.eta()
            logs.say(" | ".join(parts + ([eta] if eta else [])))
            last_line = time.monotonic()
    last = history[-1]  # the last epoch's test accuracy (a checkpoint of older code may lack it)
    top1, top5 = (last["test_top1"], last["test_top5"]) if "test_top1" in last else evaluate(model, test_batches())
    if scalars:
        scalars.close()
    return history, top1, top5


def test_every(n_train, n_test):
    """Epochs between two looks at the test accuracy of a classifier trained on n_train images:
    enough epochs to train on at least as many images as the test set holds (1 with all 50,000
    labels, 20 with 1% of them), so that watching the test set costs fewer forward passes than
    training does. Evaluation reads no random numbers, so looking less often changes nothing else."""
    return max(1, n_test // max(1, n_train))


def images_on_device(images, labels, device):
    """uint8 images (N, 32, 32, 3) and their labels as tensors on the device, (N, 3, 32, 32) and
    (N,): moved there once, so that each epoch only shuffles and augments them there."""
    return dataloader.to_tensor_batch(images).to(device), torch.as_tensor(labels).to(device)


def image_batches(x, y, bs, train, seed=0):
    """Minibatches (x, y) of uint8 images (N, 3, 32, 32) already on the device (moved there once,
    with images_on_device): for training shuffled (seeded by `seed`) and augmented on
    the device with augment.random_crop_flip (= augment.supervised_transform, without a CPU
    worker per image); for testing in order and only normalised (= augment.eval_transform)."""
    for xb, yb in tensor_batches(x, y, bs, shuffle=train, seed=seed):
        if train:
            xb = augment.random_crop_flip(xb)
        yield normalize_batch(xb), yb


def tensor_batches(x, y, bs, shuffle, seed=0, drop_last=False):
    """Minibatches of in-memory tensors (features or uint8 images already on the device)."""
    n = len(x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    order = order.to(x.device)  # once per epoch, not once per batch: each copy makes the host wait
    stop = n - n % bs if drop_last else n
    for i in range(0, stop, bs):
        idx = order[i:i + bs]
        yield x[idx], y[idx]
