"""Self-supervised pre-training of an encoder on a subset of CIFAR-10 (SimCLR by default).

    python pretrain.py --tau 0.5 --bs 256                       # SimCLR, ResNet-18, 10% of CIFAR-10
    python pretrain.py --recipe quick --device cpu              # sized for a laptop CPU: minutes
    python pretrain.py --method moco                             # MoCo v2 (or --method byol)
    python linear_eval.py --ckpt runs/<run name>                 # then evaluate the encoder
    torchrun --nproc_per_node 4 pretrain.py --bs 1024            # 4 GPUs (or CPU processes), 256 images each

Under torchrun every rank trains its share of each step's global batch (--bs stays the global
batch) with DistributedDataParallel; BatchNorm is global across ranks (--no-sync-bn: per rank);
SimCLR's loss contrasts each rank's anchors with the projections of all ranks; rank 0 alone
writes the run directory (which every rank must see: one machine, or a shared file system;
ranks that see different states of it stop with one line).

Writes runs/<name>/ (or --out-dir): config.json first, one line per epoch in metrics.jsonl
(loss, lr, seconds, images/s, how often the positive ranks first, kNN accuracy every few
epochs), checkpoint.pt after every epoch (--ckpt-every N: every N), and encoder.pt (the encoder f
and what builds it) at the end. The same command started again resumes from checkpoint.pt; a
finished run is left as it is. `--print-config` prints the resolved run as JSON, training nothing.
"""
import argparse
import contextlib
import json
import math
import os
import shlex
import sys
import time

import cli

# Settings that define what a run computes: a run directory holding other values for these
# cannot be resumed with this command (the other flags -- workers, device -- may change).
RECIPE = ("method", "encoder", "head", "proj_dim", "hidden_dim", "aug", "tau", "bs", "lr", "wd",
          "epochs", "steps", "warmup_epochs", "warmup_steps", "fraction", "seed", "queue_size", "ema",
          "aug_backend", "optimizer", "lr_scaling", "small_crops", "small_size", "neg_groups", "crop_min")


# Named recipes: `--recipe quick` sets these flags' defaults (flags on the command line still win).
# quick: sized for a laptop CPU: 28 epochs are about 3 minutes on 2 cores, start-up included; the kNN
# monitor once, at the end (each costs about 2.5 s, a third of an epoch). Each choice measured at
# equal time, and what it reaches, by time_to_accuracy.py (docs/performance.md).
RECIPES = {
    "quick": {"encoder": "quicknet", "tau": 0.1, "aug": "crop_color", "crop_min": 0.2, "small_crops": 2, "bs": 128,
              "epochs": 28, "knn_every": 28},
}


class RecipeParser(cli.Parser):
    """The parser of pretrain.py: when --recipe NAME is on the command line, RECIPES[NAME] become
    the defaults before the flags are read, so an explicit flag overrides the recipe's value. Each
    parse starts from the plain defaults: a parser that read --recipe once does not keep it."""

    def parse_known_args(self, args=None, namespace=None):
        if not hasattr(self, "plain_defaults"):
            self.plain_defaults = {k: self.get_default(k) for r in RECIPES.values() for k in r}
        self.set_defaults(**self.plain_defaults)
        argv = sys.argv[1:] if args is None else list(args)
        names = [v.split("=", 1)[1] if v.startswith("--recipe=") else (argv[i + 1] if i + 1 < len(argv) else "")
                 for i, v in enumerate(argv) if v == "--recipe" or v.startswith("--recipe=")]
        if names and names[-1] in RECIPES:  # a bad name is refused by the parse below
            self.set_defaults(**RECIPES[names[-1]])
        return super().parse_known_args(args, namespace)


def build_parser():
    p = cli.script_parser(__doc__, cls=RecipeParser)
    p.allow_abbrev = False  # so that --recipe is found before parsing (no --rec abbreviation)
    p.add_argument("--recipe", choices=tuple(RECIPES),
                   help="set the defaults of a named recipe: quick = " + " ".join(
                       f"--{k.replace('_', '-')} {v}" for k, v in RECIPES["quick"].items())
                   + " (a CPU-sized run; other flags still apply) (default: none)")
    p.add_argument("--method", choices=cli.METHODS, default="simclr", help="objective (default: simclr)")
    p.add_argument("--tau", type=cli.positive_float,
                   help="temperature of the contrastive loss (default: 0.5 for simclr, SimCLR App. B.9; "
                        "0.2 for moco, MoCo v2; unused by byol)")
    p.add_argument("--wd", type=cli.nonneg_float,
                   help="weight decay (default: 5e-4 with sgd, the usual value for SGD on CIFAR; 1e-6 with lars, "
                        "SimCLR's (its CIFAR-10 command and App. B.9))")
    p.add_argument("--warmup-epochs", type=cli.nonneg_float, default=10,
                   help="linear warm-up epochs, at most a tenth of the run (default: 10, SimCLR App. B.9)")
    p.add_argument("--steps", type=cli.positive_int,
                   help="train for this many optimiser steps instead of --epochs (the last epoch is cut "
                        "short): to compare settings at an equal number of updates (default: off)")
    p.add_argument("--warmup-steps", type=cli.nonneg_int,
                   help="linear warm-up in steps, instead of --warmup-epochs: runs compared at an equal "
                        "number of steps get an equal warm-up (default: off)")
    p.add_argument("--encoder", choices=cli.ENCODERS, default="resnet18", help="base encoder f (default: resnet18)")
    p.add_argument("--head", choices=cli.HEADS, default="bn",
                   help="projection head g: bn = Linear-BN-ReLU-Linear, nobn = without BN, none = loss on h "
                        "(default: bn)")
    p.add_argument("--proj-dim", type=cli.positive_int, default=128, help="output size of g (default: 128, SimCLR)")
    p.add_argument("--hidden-dim", type=cli.positive_int, help="hidden width of g (default: the encoder's feature size)")
    p.add_argument("--aug", choices=cli.AUG_PRESETS, default="simclr",
                   help="augmentation preset, see augment.PRESETS (default: simclr)")
    p.add_argument("--aug-backend", choices=("auto", "torchvision", "batched"), default="auto",
                   help="torchvision = per-image PIL pipeline in DataLoader workers; batched = whole batches "
                        "as tensors on the device; auto = batched (same ops, faster) (default: auto)")
    p.add_argument("--crop-min", type=cli.crop_min, default=cli.CROP_MIN,
                   help="smallest area fraction of the two views' crops: RandomResizedCrop(scale=(MIN, 1)), for "
                        "the presets with a crop (default: 0.08, SimCLR's and torchvision's)")
    p.add_argument("--small-crops", type=cli.nonneg_int, default=0,
                   help="simclr: K extra low-resolution views per image (multi-crop, SwAV Sec. 3.2), each a "
                        "crop of 8-40%% of the image (the whole image for a preset without a crop) resized to --small-size "
                        "and given the preset's other ops; every view of an image is a "
                        "positive of every other (default: 0, SimCLR's two views)")
    p.add_argument("--small-size", type=cli.positive_int, default=16,
                   help="side of the --small-crops views in pixels (default: 16, a quarter of a view's compute)")
    p.add_argument("--neg-groups", type=cli.positive_int, default=1,
                   help="simclr: compute NT-Xent within k groups of bs/k images, so each anchor has 2bs/k - 2 "
                        "negatives while the batch, steps and lr stay (the negatives study) (default: 1)")
    p.add_argument("--fraction", type=cli.fraction, default=0.1,
                   help="stratified fraction of the 50,000 training images used (default: 0.1, the assignment's)")
    p.add_argument("--knn-every", type=cli.nonneg_int, default=10,
                   help="kNN monitor on the test split every N epochs and at the end; 0 = never (default: 10)")
    p.add_argument("--queue-size", type=cli.positive_int, default=1024,
                   help="moco: negative keys in the queue, two per image (default: 1024 = the keys of 512 "
                        "images, about a tenth of the 10%% subset; MoCo's CIFAR-10 demo keeps 4096 for all "
                        "50,000 images); an image's own stale keys are never its negatives")
    p.add_argument("--ema", type=cli.fraction, default=0.99,
                   help="moco: key-network momentum; byol: base target momentum, rising to 1 (default: 0.99)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA; the plain module is saved)")
    p.add_argument("--optimizer", choices=("sgd", "lars"), default="sgd",
                   help="sgd = SGD with momentum 0.9; lars = LARS as SimCLR uses it for large batches (momentum "
                        "0.9, trust coefficient 0.001, biases and BatchNorm excluded from adaptation and decay) "
                        "(default: sgd)")
    p.add_argument("--lr-scaling", choices=("linear", "sqrt"), default="linear",
                   help="linear: lr = --lr x bs / 256; sqrt: lr = --lr x sqrt(bs) (SimCLR App. B.1). Default --lr: "
                        "0.12 for sgd; 1.0 for lars (linear), the CIFAR-10 rate of SimCLR's code (its README: "
                        "--learning_rate=1.0 at batch 512, scaled linearly: 2.0); 0.075 for lars with sqrt (App. B.1); "
                        "0.0075 for sgd with sqrt (= 0.12 at bs 256) (default: linear)")
    p.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=True,
                   help="under torchrun: BatchNorm statistics over the global batch, SimCLR's global BN "
                        "(--no-sync-bn: per rank); MoCo's key network stays per rank for shuffle-BN. "
                        "No effect with one process (default: on)")
    p.add_argument("--ckpt-every", type=cli.positive_int, default=1,
                   help="write checkpoint.pt every N epochs and after the last; a resumed run restarts after the "
                        "last one written (default: 1; a ResNet-18 checkpoint is about 88 MB, which costs a "
                        "noticeable share of a short GPU epoch)")
    p.add_argument("--dist-timeout", type=cli.positive_int, default=1800,
                   help="under torchrun: seconds a collective waits for a slow or lost rank before the job "
                        "fails (default: 1800)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved run (run directory, images, steps, warm-up, lr, tau, ...) as JSON "
                        "and exit without training; run_all.sh reads it")
    p.set_defaults(epochs=500, bs=256, lr=None)
    return p


if __name__ == "__main__":
    build_parser().parse_args()  # -h and a mistyped flag answer here, before torch is imported (seconds)

import torch  # noqa: E402  (after the parse above)

import augment  # noqa: E402
import common  # noqa: E402
import dataloader  # noqa: E402
import dist  # noqa: E402
import logs  # noqa: E402
import methods  # noqa: E402
import models  # noqa: E402
import optim  # noqa: E402
from common import UserError  # noqa: E402


# --lr when not given, by (--optimizer, --lr-scaling): SGD's 0.12 per 256 images is this
# project's CIFAR-10 default; LARS takes SimCLR's own rates (its CIFAR-10 command: 1.0 x bs / 256;
# App. B.1: 0.075 x sqrt(bs)), whose size the trust ratio (about 1e-3 x ||w|| / ||g||) scales down.
DEFAULT_LR = {("sgd", "linear"): 0.12, ("sgd", "sqrt"): 0.12 / 16, ("lars", "linear"): 1.0, ("lars", "sqrt"): 0.075}
# --wd when not given: SGD's usual CIFAR value; SimCLR's 1e-6 with LARS (App. B.9; its CIFAR-10
# command), 500x less, because LARS's trust ratio rescales each layer's step anyway.
DEFAULT_WD = {"sgd": 5e-4, "lars": 1e-6}


def default_out_dir(a):
    """runs/<the recipe in a name>. Numbers as Python writes them (0.5, 1.0): the names run_all.sh
    has always given its runs (it asks --print-config for them)."""
    tau = "" if a.method == "byol" else f"_t{a.tau}"
    length = f"_st{a.steps}" if a.steps else f"_e{a.epochs}"
    opt = ("_lars" if a.optimizer == "lars" else "") + ("_sqrt" if a.lr_scaling == "sqrt" else "")
    views = (f"_mc{a.small_crops}x{a.small_size}" if a.small_crops else "") + (f"_g{a.neg_groups}" if a.neg_groups > 1 else "")
    crop = f"_cs{a.crop_min}" if a.crop_min != cli.CROP_MIN else ""  # crops from MIN of the image up
    return os.path.join("runs", f"{a.method}_{a.encoder}_{a.head}_{a.aug}{crop}{tau}{views}_bs{a.bs}{length}"
                                f"_f{a.fraction}_s{a.seed}{opt}")


def check_args(a):
    """Refuse combinations argparse cannot see; resolve method-dependent defaults."""
    if a.method == "byol" and a.head != "bn":
        raise UserError("--method byol needs --head bn (BYOL's projector uses BatchNorm)")
    if a.method == "moco" and a.queue_size < 2 * a.bs:
        raise UserError(f"--queue-size {a.queue_size} must hold at least one batch of keys (2 x --bs = {2 * a.bs})")
    if (a.small_crops or a.neg_groups > 1) and a.method != "simclr":
        raise UserError("--small-crops and --neg-groups are options of --method simclr")
    if a.small_crops and a.aug_backend == "torchvision":
        raise UserError("--small-crops needs --aug-backend auto or batched (the torchvision pipeline makes two views)")
    if a.small_crops and not 16 <= a.small_size <= 32:  # the small convnets halve a view 4 times
        raise UserError(f"--small-size {a.small_size} must be between 16 and 32 pixels")
    if a.bs % a.neg_groups:
        raise UserError(f"--neg-groups {a.neg_groups} must divide --bs {a.bs}")
    if a.tau is None:
        a.tau = methods.DEFAULT_TAU[a.method]
    if a.lr is None:
        a.lr = DEFAULT_LR[a.optimizer, a.lr_scaling]
    if a.wd is None:
        a.wd = DEFAULT_WD[a.optimizer]
    a.out_dir = a.out_dir or default_out_dir(a)
    common.check_writable(a.out_dir)  # before any work, not at the first save


def check_resumable(out_dir, args):
    """A run directory belongs to one recipe: resuming it with other settings would mix two runs."""
    path = os.path.join(out_dir, "config.json")
    if not os.path.exists(path):
        return
    old = common.read_json(path).get("args", {})
    derived = {"epochs"} if args.steps else set()  # with --steps, config.json holds the epochs it implies
    diff = [f"--{k.replace('_', '-')} {old.get(k)} vs {getattr(args, k)}" for k in RECIPE
            if k in old and k not in derived and old[k] != getattr(args, k)]
    if diff:
        raise UserError(f"{out_dir} holds a run with other settings ({'; '.join(diff)}); "
                        "choose another --out-dir")


def save_encoder(method, args, path):
    """encoder.pt: f's weights plus what rebuilds it, so linear_eval.py needs no architecture flags.
    g's weights travel too, for the probe on z = g(h) of the projection-head analysis."""
    common.save_atomic({"encoder": args.encoder, "feature_dim": method.encoder.feature_dim,
                        "state_dict": method.encoder.state_dict(),
                        "head": args.head, "proj_dim": args.proj_dim, "hidden_dim": args.hidden_dim,
                        "head_state_dict": method.head.state_dict(),
                        "method": args.method, "args": vars(args)}, path)


def main(args):
    """The run, step by step: resolve the recipe; join the processes; stop if finished; load the
    data; build the model and optimiser; resume or start; train; save the encoder."""
    check_args(args)
    if args.print_config:
        print(json.dumps(resolved_config(args), indent=2), flush=True)
        return None
    device, dtype = join_processes(args)
    out = args.out_dir
    if finished(args):
        return out
    hint = cpu_hint(args, device)
    if hint:
        logs.say(hint)
    common.seed_everything(args.seed)
    x_train, y_train, x_test, y_test = dist.local_first(lambda: common.load_data(args))  # one download per machine
    subset = dataloader.stratified_subset(y_train, args.fraction, args.seed)
    if len(subset) < args.bs:
        raise UserError(f"--bs {args.bs} is larger than the pre-training subset ({len(subset)} images); "
                        "lower --bs or raise --fraction")
    method = build_method(args, device)
    views = common.TwoViews(x_train[subset], args, device)
    steps, total, warmup = schedule(args, views.steps)
    if args.steps:
        args.epochs = -(-total // steps)  # the epochs --steps implies, the last one cut short
    lr = optim.scaled_lr(args.lr, args.bs, args.lr_scaling)
    optimizer = (optim.lars if args.optimizer == "lars" else optim.sgd)(method.parameters(), lr, args.wd)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    model = wrap(method, args, device)
    start = resume_or_start(args, method, optimizer, scaler, device, {
        "images": len(subset), "steps_per_epoch": steps, "total_steps": total, "warmup_steps": warmup})
    world = dist.world_size()
    logs.say(f"{args.method} | {args.encoder} + head {args.head} | {len(subset)} images, {steps} steps/epoch, "
             f"{total} steps, warm-up {warmup} | "
             f"aug {args.aug} ({'batched' if views.batched else 'torchvision'}) | lr {lr:g} | {device_label(device, dtype)}"
             + (f" | {world} processes x {args.bs // world} images{', global BN' if args.sync_bn else ''}"
                if world > 1 else ""))
    bank = common.knn_bank(y_train)
    train(args, method, model, optimizer, scaler, views, (x_train[bank], y_train[bank], x_test, y_test),
          start, (steps, total, warmup, lr), device, dtype)
    encoder_path = os.path.join(out, "encoder.pt")
    if dist.is_main():
        save_encoder(method, args, encoder_path)
    dist.barrier()  # encoder.pt is there before any rank returns
    logs.say(f"saved {encoder_path}. Next: python linear_eval.py --ckpt {out}")
    return out


def resolved_config(args):
    """What this command would run, without running it (--print-config): the run directory, the
    subset's size, the steps, the warm-up and the learning rate, resolved as main() resolves them.
    The subset's size comes from the data when it is there, else from CIFAR-10's 5,000 training
    images per class."""
    counts = [dataloader.CIFAR10_TRAIN_PER_CLASS] * len(dataloader.CLASSES)
    if dataloader.find_layout(args.data_dir):
        import numpy as np
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the JSON alone ("decoding ..." goes aside)
            counts = np.bincount(common.load_data(args)[1]).tolist()
    images = sum(max(1, int(round(args.fraction * c))) for c in counts)  # = len(stratified_subset(...))
    steps, total, warmup = schedule(args, images // args.bs)
    return {"out_dir": args.out_dir, "method": args.method, "encoder": args.encoder, "head": args.head,
            "aug": args.aug, "crop_min": args.crop_min, "small_crops": args.small_crops, "small_size": args.small_size,
            "neg_groups": args.neg_groups, "tau": args.tau, "bs": args.bs, "images": images,
            "steps_per_epoch": steps, "total_steps": total, "warmup_steps": warmup,
            "epochs": -(-total // steps) if args.steps else args.epochs, "optimizer": args.optimizer,
            "lr_per_256": args.lr, "lr": optim.scaled_lr(args.lr, args.bs, args.lr_scaling), "wd": args.wd,
            "default_tau": methods.DEFAULT_TAU, "default_crop_min": cli.CROP_MIN}


def join_processes(args):
    """Under torchrun: join the group (cuda:LOCAL_RANK); check what every rank must agree on.
    Returns (device, autocast dtype)."""
    try:
        device = dist.init(common.resolve_device(args.device), timeout_s=args.dist_timeout)
    except ValueError as e:  # a wrong $SSL_DIST_BACKEND
        raise UserError(str(e)) from None
    world = dist.world_size()
    if args.bs % world:
        raise UserError(f"--bs {args.bs} (the global batch) must be a multiple of the {world} processes")
    dtype = common.amp_dtype(args.amp, device)  # before anything is written: --amp fp16 on a CPU is an error
    return device, dtype


def same_on_every_rank(value, what):
    """`value` when every rank computed the same one; else the one-line error every rank raises
    (instead of rank 0 resuming at epoch k while the others start at 0 and wait in a collective
    until the timeout). The identity with one process."""
    values = dist.all_gather_object(value)
    if any(v != values[0] for v in values):
        seen = "; ".join(f"rank {r}: {v}" for r, v in enumerate(values))
        raise UserError(f"the ranks disagree about {what} ({seen}): every rank must see the same run "
                        "directory (one machine, or a file system shared by every node)")
    return value


def finished(args):
    """Whether the run directory holds a finished run (encoder.pt), which is then left as it is;
    refuses a directory of another recipe."""
    out = args.out_dir
    check_resumable(out, args)
    done = same_on_every_rank(os.path.exists(os.path.join(out, "encoder.pt")), f"whether {out}/encoder.pt exists")
    if done:
        logs.say(f"{out} is finished (encoder.pt exists); nothing to do. Next: python linear_eval.py --ckpt {out}")
    return done


def build_method(args, device):
    """The objective, built alike on every rank (same seed), with global BatchNorm under torchrun;
    from here each rank draws its own augmentations, reproducibly: its random streams are seeded
    by (seed, rank)."""
    method = methods.build_method(args.method, args.encoder, args.head, args.proj_dim, args.hidden_dim,
                                  args.tau, args.queue_size, args.ema, args.neg_groups).to(device)
    if dist.world_size() > 1:
        common.seed_everything(args.seed * 1000 + dist.rank() + 1)
        if args.sync_bn:
            dist.convert_sync_batchnorm(method, skip=method.local_bn)
    return method


def wrap(method, args, device):
    """What the step calls: the method in channels_last, under DDP with several
    processes, compiled with --compile. `method` stays the plain module: what is saved, what
    after_step moves."""
    common.set_backends(args, device, benchmark=True)
    # channels_last (NHWC): cudnn's fast layout on a GPU, and oneDNN's on a CPU, where it also
    # makes max-pooling about 4x faster than in NCHW (bench.py measures the step)
    method.to(memory_format=torch.channels_last)
    model = method
    if dist.world_size() > 1:  # averages the gradients over ranks; broadcasts rank 0's weights and buffers first
        model = torch.nn.parallel.DistributedDataParallel(method, device_ids=[device] if device.type == "cuda" else None)
    return torch.compile(model) if args.compile else model


def resume_or_start(args, method, optimizer, scaler, device, plan):
    """The epoch to start from: the checkpoint's, restored into method, optimizer and scaler,
    when one is there (every rank must see it: same_on_every_rank), else 0 after writing
    config.json. `plan`: the schedule's facts, recorded in config.json."""
    out, world, rank = args.out_dir, dist.world_size(), dist.rank()
    ckpt_path, metrics_path = os.path.join(out, "checkpoint.pt"), os.path.join(out, "metrics.jsonl")
    start = 0
    if same_on_every_rank(os.path.exists(ckpt_path), f"whether {ckpt_path} exists"):
        def restore(state):
            if state.get("world_size", 1) != world:
                raise UserError(f"{ckpt_path} was written by a run of {state.get('world_size', 1)} process(es); "
                                f"resume it with as many (this is {world}), or choose another --out-dir")
            method.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            common.load_scaler(scaler, state["scaler"], ckpt_path)
            common.set_rng_state(state["rng_ranks"][rank] if world > 1 else state["rng"])
            return state["epoch"]
        start = same_on_every_rank(common.resume_from(ckpt_path, restore), f"the epoch {ckpt_path} holds")
        if dist.is_main():
            common.truncate_jsonl(metrics_path, start)
        logs.say(f"resuming {out} after epoch {start}/{args.epochs}")
    elif dist.is_main():
        common.write_config(out, args, "pretrain", device, world_size=world, schedule=plan)
        common.truncate_jsonl(metrics_path, 0)
    dist.barrier()  # every rank has decided whether it resumes before rank 0 writes a checkpoint
    return start


def train(args, method, model, optimizer, scaler, views, knn_data, start, plan, device, dtype):
    """Epochs start..end: the steps, then on rank 0 the epoch's line in metrics.jsonl, the kNN
    monitor every --knn-every epochs and checkpoint.pt every --ckpt-every epochs."""
    from tqdm import tqdm
    steps, total, warmup, lr = plan
    out, world = args.out_dir, dist.world_size()
    ckpt_path, metrics_path = os.path.join(out, "checkpoint.pt"), os.path.join(out, "metrics.jsonl")
    progress = logs.Progress(total, start * steps, device)  # wall clock and step counts: no sync
    scalars = (logs.Scalars(os.path.join(out, "tb", "pretrain"), "pretrain", resume_step=start * steps + 1 if start else None)
               if dist.is_main() else None)  # rank 0 alone writes
    for epoch in range(start, args.epochs):
        method.train()
        t0, loss_sum, top1_sum = time.time(), 0.0, 0.0
        n_steps = min(steps, total - epoch * steps)  # the last epoch of a --steps run is cut short
        bar = tqdm(views.epoch(epoch), total=n_steps, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False,
                   disable=None if dist.is_main() else True)
        for i, (x1, x2, idx, *small) in enumerate(bar):  # small: the multi-crop views, if any
            if i == n_steps:
                break
            step = epoch * steps + i
            optim.set_lr(optimizer, optim.lr_at(step, total, lr, warmup))
            loss, stats = common.ssl_step(model, x1, x2, optimizer, scaler, dtype, idx, *small)
            method.after_step(step + 1, total)
            loss_sum = loss_sum + loss  # device tensors: no host-device sync inside the epoch
            top1_sum = top1_sum + stats.get("pos_top1", float("nan"))
            early = progress.step(args.bs)
            if early:
                logs.say(early)
            if i % 10 == 0 and not bar.disable:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.3g}")
        epoch_loss = float(dist.all_reduce_mean(loss_sum) / n_steps)  # the global batch's loss
        if not math.isfinite(epoch_loss):  # checked before anything of this epoch is saved
            raise UserError(f"the loss became {epoch_loss} during epoch {epoch + 1}; {ckpt_path} still holds "
                            f"the last good epoch. Try a lower --lr")
        seconds = time.time() - t0
        record = {"epoch": epoch + 1, "step": epoch * steps + n_steps, "loss": epoch_loss,
                  "lr": optimizer.param_groups[0]["lr"], "seconds": seconds, "img_per_s": n_steps * args.bs / seconds}
        if "pos_top1" in stats:
            record["pos_top1"] = float(dist.all_reduce_mean(top1_sum) / n_steps)
        save = (epoch + 1) % args.ckpt_every == 0 or epoch + 1 == args.epochs
        rng = dist.all_gather_object(common.rng_state()) if save else None  # every rank's streams, for resuming
        if not dist.is_main():
            continue  # rank 0 alone measures, writes and prints
        if args.knn_every and ((epoch + 1) % args.knn_every == 0 or epoch + 1 == args.epochs):
            bank = common.extract_features(method.encoder, knn_data[0], device, dtype=dtype)
            test = common.extract_features(method.encoder, knn_data[2], device, dtype=dtype)
            record["knn_top1"] = common.knn_accuracy(bank, knn_data[1], test, knn_data[3])
        common.append_jsonl(metrics_path, record)
        scalars.add(record, record["step"])
        if save:
            common.save_atomic({"model": method.state_dict(), "optimizer": optimizer.state_dict(),
                                "scaler": scaler.state_dict(), "epoch": epoch + 1, "rng": rng[0],
                                **({"world_size": world, "rng_ranks": rng} if world > 1 else {})}, ckpt_path)
        eta = progress.eta()  # the loss was read above: the host has waited for the device already
        logs.say(" | ".join([f"epoch {epoch + 1}/{args.epochs}", f"loss {record['loss']:.4f}",
                             f"lr {record['lr']:.4f}", f"{record['img_per_s']:.0f} img/s", f"{seconds:.1f} s"]
                            + [f"{k} {record[k]:.2f}" for k in ("pos_top1", "knn_top1") if k in record]
                            + ([eta] if eta else [])))
    if scalars:
        scalars.close()


def schedule(args, steps_per_epoch):
    """(steps per epoch, total steps, warm-up steps) of a run. The warm-up is --warmup-steps when
    given, else --warmup-epochs capped at a tenth of the run; it is counted in steps, as the
    learning rate changes every step (optim.lr_at)."""
    total = args.steps or steps_per_epoch * args.epochs
    if args.warmup_steps is not None:
        warmup = min(args.warmup_steps, total)
    else:
        warmup = round(min(args.warmup_epochs * steps_per_epoch, total / 10))
    return steps_per_epoch, total, warmup


# What to run on a CPU instead of a ResNet: the quick recipe (RECIPES), minutes instead of the
# ResNet's hours (README, "Time to accuracy").
CPU_COMMAND = "python pretrain.py --recipe quick --device cpu"
CARRIED = ("method", "tau", "bs", "aug", "head", "fraction", "seed", "data_dir")  # kept in CPU_COMMAND when set


def cpu_hint(args, device):
    """On a CPU a ResNet pre-trains at about 50 images/s on 2 cores (ResNet-18; 500 epochs of the
    10% subset: about 13 h), which nothing else says before the time estimate: the line that
    says so and gives the CPU-sized command, keeping the user's other recipe flags. None on a
    GPU or for the small convnet and quicknet."""
    if device.type != "cpu" or args.encoder in ("convnet", "quicknet"):
        return None
    defaults = vars(build_parser().parse_args([]))
    defaults["tau"] = methods.DEFAULT_TAU[args.method]
    flags = [_flag(k, getattr(args, k)) for k in CARRIED
             if getattr(args, k) is not None and getattr(args, k) != defaults[k]]
    flags += ["--no-download"] if args.no_download else []
    return (f"note: {args.encoder} on a CPU trains for hours (the time left follows the first steps); "
            f"sized for a CPU: {' '.join([CPU_COMMAND] + flags)}")


def _flag(name, value):
    text = format(value, "g") if isinstance(value, float) else str(value)
    return f"--{name.replace('_', '-')} {shlex.quote(text)}"


def device_label(device, dtype):
    name = common.device_name(device)
    return f"{name}, {common.precision_name(dtype)}"


if __name__ == "__main__":
    raise SystemExit(common.run_cli(main, build_parser()))
