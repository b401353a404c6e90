"""Benchmarks of the fast path, printed as Markdown tables for the README, every number in JSON.

    python bench.py --quick                                        # < 2 minutes on a 2-core CPU
    python bench.py --device cpu --out bench_cpu.json > bench_cpu.md   # the full CPU run
    python bench.py --device cuda --out bench_gpu.json             # adds the CUDA rows
    python bench.py --only loss,aug                                # some of the three sections
    bash run_all.sh --quick --dry-run | tail -1                    # uses --estimate: a grid's time

1. loss:  loss.nt_xent (forward + backward) against a literal double loop of SimCLR's Algorithm 1
          and against its bound, the (2N x d) @ (d x 2N) product z @ z.T with its backward
          (3 matrix products), at N = 64, 256, 1024 and d = 128.
2. aug:   two-view augmentation throughput: the torchvision pipeline in a DataLoader with one
          worker per core, against augment.BatchedAugment on the CPU (and on CUDA).
3. train: pre-training throughput and peak memory of SimCLR for convnet, quicknet and resnet18,
          per augmentation backend (common.TwoViews), fp32 against autocast where the device has
          bf16, and on the CPU the small encoders also in NCHW (pretrain.py runs channels_last);
          last, the step of `pretrain.py --recipe quick` as it runs (its batch, its two 16x16
          multi-crop views), with the share of making the views.

Times are medians of repeats after a warm-up (torch.cuda.synchronize before reading the clock).
Images are random uint8: the cost of these ops does not depend on the pixel values, and no
download is needed. Progress goes to stderr, so `> file.md` keeps only the tables. Measure on an
idle machine (the tables warn when the 1-min load average is above 0.5): torch's threads wait for
each other at every op, so a process competing for the cores slows CPU timings by 2x to 100x.
"""
import argparse
import itertools
import os
import platform
import resource
import statistics
import sys
import time
from datetime import datetime

import numpy as np
import torch
from torch.utils.data import DataLoader

import augment
import common
import dataloader
import logs
import loss
import optim
import pretrain  # its parser, recipes and build_method: the benchmark runs pretrain.py's flags and objective

SECTIONS = ("loss", "aug", "train")
GOAL_MATMUL_RATIO = 3.0  # nt_xent within 3x of its matrix-product bound at N = 256 (issue 5)
GOAL_AUG_SPEEDUP = 5.0  # batched augmentation at least 5x torchvision on the CPU (issue 5)
GOAL_AUG_SHARE = 0.5  # on a GPU the training step, not augmentation, takes most of a step
# Sizes per profile. loop_n: where the literal loop is timed (it is O(N^2) Python-level ops);
# train_bs: the encoders, each with its batch on the CPU (resnet18 runs at tens of images/s
# there); on CUDA every encoder uses pretrain.py's default batch of 256. recipe_bs: the batch of the
# --recipe quick row (None: the recipe's own).
PROFILES = {
    "full": dict(loss_n=(64, 256, 1024), loop_n=(64, 256), dim=128, repeats=9, loop_repeats=2,
                 aug_images=4096, aug_passes=3, train_bs={"convnet": 256, "quicknet": 256, "resnet18": 64},
                 warmup=1, steps=5, gpu_warmup=5, gpu_steps=30, recipe_bs=None),
    "quick": dict(loss_n=(64, 256, 1024), loop_n=(64, 256), dim=128, repeats=5, loop_repeats=1,
                  aug_images=2048, aug_passes=1, train_bs={"convnet": 64, "quicknet": 64, "resnet18": 64},
                  warmup=1, steps=3, gpu_warmup=3, gpu_steps=10, recipe_bs=None),
    "tiny": dict(loss_n=(8, 16), loop_n=(8,), dim=16, repeats=2, loop_repeats=1,  # for the tests
                 aug_images=64, aug_passes=1, train_bs={"convnet": 8},  # convnet only: seconds
                 warmup=1, steps=1, gpu_warmup=1, gpu_steps=1, recipe_bs=8),
}
AUG_BS = 256  # images per batch in the augmentation benchmark (pretrain.py's default --bs)


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device, repeats, warmup=1):
    """Median wall time of fn() in milliseconds over `repeats` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def random_images(n, seed=0):
    """n random uint8 images (n, 32, 32, 3), the layout of load_cifar10's arrays."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------- 1. nt_xent

def nt_xent_loop(z_i, z_j, tau=0.5):
    """SimCLR Algorithm 1 literally, one Python-level op per pair, as torch scalars (so autograd
    runs the backward as well). 0-based: z[2k], z[2k+1] are the views of image k.

    for all i, j in 1..2N: s_ij = z_i^T z_j / (||z_i|| ||z_j||)
    l(i, j) = -log exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau)
    L = 1/(2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)]
    """
    n = len(z_i)
    z = [v for k in range(n) for v in (z_i[k], z_j[k])]
    u = [v / v.norm() for v in z]  # unit vectors: u_a . u_b = s_ab
    e = [[torch.exp(u[a] @ u[b] / tau) for b in range(2 * n)] for a in range(2 * n)]  # exp(s_ab/tau)

    def l(i, j):
        return -torch.log(e[i][j] / sum(e[i][k] for k in range(2 * n) if k != i))

    return sum(l(2 * k, 2 * k + 1) + l(2 * k + 1, 2 * k) for k in range(n)) / (2 * n)


def bench_loss(device, p):
    """Forward + backward of the loop, of nt_xent and of z @ z.T alone, per N; times in ms."""
    rows, d, tau = [], p["dim"], 0.5
    for n in p["loss_n"]:
        g = torch.Generator().manual_seed(n)
        z_i, z_j = (torch.randn(n, d, generator=g).to(device).requires_grad_() for _ in range(2))
        z = torch.cat([z_i, z_j]).detach().requires_grad_()  # (2N, d)
        grad = torch.randn(2 * n, 2 * n, generator=g).to(device)  # upstream gradient of z @ z.T

        def vectorised():
            z_i.grad = z_j.grad = None
            loss.nt_xent(z_i, z_j, tau).backward()

        def loop():
            z_i.grad = z_j.grad = None
            nt_xent_loop(z_i, z_j, tau).backward()

        def matmul():
            z.grad = None
            (z @ z.T).backward(grad)  # forward: 1 product (2N, 2N); backward: grad @ z + grad.T @ z

        log(f"loss: N={n}")
        row = {"N": n, "d": d, "nt_xent_ms": time_ms(vectorised, device, p["repeats"], warmup=2),
               "matmul_ms": time_ms(matmul, device, p["repeats"], warmup=2)}
        if n in p["loop_n"]:
            row["loop_ms"] = time_ms(loop, device, p["loop_repeats"], warmup=0)
            row["loop_extrapolated"] = False
        else:  # too slow to time: scale the largest timed N by (N / N_timed)^2, the op count
            timed = [r for r in rows if not r["loop_extrapolated"]][-1]
            row["loop_ms"] = timed["loop_ms"] * (n / timed["N"]) ** 2
            row["loop_extrapolated"] = True
        row["loop_speedup"] = row["loop_ms"] / row["nt_xent_ms"]
        row["matmul_ratio"] = row["nt_xent_ms"] / row["matmul_ms"]
        rows.append(row)
    at = [r for r in rows if r["N"] == 256]
    goal = {"what": f"nt_xent within {GOAL_MATMUL_RATIO:g}x of its matmul bound at N=256",
            "value": at[0]["matmul_ratio"] if at else None}
    goal["met"] = None if not at else goal["value"] <= GOAL_MATMUL_RATIO
    return {"rows": rows, "goal": goal, "tau": tau}


# ---------------------------------------------------------------------------- 2. augmentation

def bench_aug(device, p):
    """Source images per second, each turned into two views, for the three pipelines."""
    n, workers = p["aug_images"], os.cpu_count() or 1
    images, rows = random_images(n), []
    log(f"aug: torchvision DataLoader, {workers} workers, {n} images")
    loader = DataLoader(dataloader.TwoViewDataset(images, augment.get_preset("simclr")), batch_size=AUG_BS,
                        num_workers=workers, persistent_workers=workers > 0)

    def full_pass():
        for _ in loader:
            pass
    # persistent workers: the warm-up pass pays for starting them, the timed passes do not
    ms = time_ms(full_pass, torch.device("cpu"), p["aug_passes"], warmup=1)
    rows.append({"pipeline": f"torchvision, DataLoader ({workers} workers)", "device": "cpu",
                 "img_per_s": n / ms * 1000})
    loader = None  # stops its workers (full_pass sees the same variable)
    devices = [torch.device("cpu")] + ([device] if device.type == "cuda" else [])
    for dev in devices:
        log(f"aug: BatchedAugment on {dev.type}")
        x, aug = dataloader.to_tensor_batch(images).to(dev), augment.BatchedAugment("simclr").to(dev)

        def batched_pass():
            for i in range(0, n, AUG_BS):
                aug(x[i:i + AUG_BS]), aug(x[i:i + AUG_BS])  # two views, each its own draws
        ms = time_ms(batched_pass, dev, max(3, p["aug_passes"]), warmup=1)
        rows.append({"pipeline": "BatchedAugment", "device": common.device_name(dev), "img_per_s": n / ms * 1000})
    for r in rows:
        r["vs_torchvision"] = r["img_per_s"] / rows[0]["img_per_s"]
    goal = {"what": f"batched augmentation on the CPU >= {GOAL_AUG_SPEEDUP:g}x torchvision",
            "value": rows[1]["vs_torchvision"]}
    goal["met"] = goal["value"] >= GOAL_AUG_SPEEDUP
    return {"rows": rows, "goal": goal, "batch": AUG_BS, "images": n, "workers": workers}


# ---------------------------------------------------------------------------- 3. pre-training

def bench_train_one(device, encoder, backend, amp, bs, warmup, steps, layout="channels_last", recipe=None):
    """Images/s and peak memory of pretrain.py's SimCLR step (two views, forward, backward, SGD).
    layout: channels_last, as pretrain.py runs, or nchw (PyTorch's default) to show what it buys;
    recipe: a name of pretrain.RECIPES, whose flags then set the step (its views, multi-crop
    included), except the encoder, backend, precision and batch given here (bs None: the recipe's)."""
    args = pretrain.build_parser().parse_args(
        (["--recipe", recipe] if recipe else [])
        + ["--encoder", encoder, "--aug-backend", backend, "--amp", amp, "--workers", str(os.cpu_count() or 1)]
        + (["--bs", str(bs)] if bs else []))
    bs = args.bs
    pretrain.check_args(args)  # resolves --lr from --optimizer
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    method = pretrain.build_method(args, device)  # the recipe's method, head and temperature
    optimizer = optim.sgd(method.parameters(), optim.scaled_lr(args.lr, bs), args.wd)
    dtype = common.amp_dtype(amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    if device.type == "cuda":  # as pretrain.py does
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    method = method.to(memory_format=memory_format)
    views = common.TwoViews(random_images((warmup + steps) * bs), args, device)
    batches = views.epoch(0)

    def step():  # pretrain.main's loop body, without the logging
        x1, x2, idx, *small = next(batches)  # small: the multi-crop views, if any
        common.ssl_step(method, x1, x2, optimizer, scaler, dtype, idx, *small, memory_format=memory_format)

    for _ in range(warmup):  # also starts the DataLoader workers and runs cudnn's autotuning
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    step_ms = 1000 * (time.perf_counter() - t0) / steps
    row = {"encoder": encoder, "backend": backend, "amp": amp, "layout": layout, "precision": common.precision_name(dtype),
           "device": device.type, "batch": bs, "steps": steps, "img_per_s": bs / step_ms * 1000, "step_ms": step_ms,
           "recipe": recipe, "small_crops": views.small_crops}
    if device.type == "cuda":
        row["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:  # the process's high-water mark: it rises only when a row needs more than any before
        row["peak_rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    if views.batched:  # share of the step spent making the views of one batch, as the step gets them
        more = itertools.chain.from_iterable(views.epoch(e) for e in itertools.count(1))
        row["aug_ms"] = time_ms(lambda: next(more), device, repeats=5)
        row["aug_share"] = row["aug_ms"] / step_ms
    batches = views = None  # stops the DataLoader workers
    return row


def bench_train(device, p):
    # fp32 against --amp auto where auto means something: CUDA, or a CPU with bf16 instructions
    amps = ("off", "auto") if device.type == "cuda" or common.cpu_has_bf16() else ("off",)
    warm, steps = (p["gpu_warmup"], p["gpu_steps"]) if device.type == "cuda" else (p["warmup"], p["steps"])
    rows = []
    for encoder in p["train_bs"]:
        bs = 256 if device.type == "cuda" else p["train_bs"][encoder]
        for backend in ("torchvision", "batched"):
            for amp in amps:
                log(f"train: {encoder}, {backend}, amp {amp}, batch {bs}")
                rows.append(bench_train_one(device, encoder, backend, amp, bs, warm, steps))
        if device.type == "cpu" and encoder != "resnet18":  # what channels_last buys on the CPU (oneDNN)
            log(f"train: {encoder}, batched, amp {amps[-1]}, batch {bs}, NCHW")
            rows.append(bench_train_one(device, encoder, "batched", amps[-1], bs, warm, steps, layout="nchw"))
    log(f"train: pretrain.py --recipe quick, amp {amps[-1]}")  # the CPU recipe's own step, multi-crop included
    rows.append(bench_train_one(device, pretrain.RECIPES["quick"]["encoder"], "batched", amps[-1], p["recipe_bs"],
                                warm, steps, recipe="quick"))
    # the goal is about the default recipe: resnet18, batched augmentation, --amp auto
    default = [r for r in rows if (r["encoder"], r["backend"], r["amp"]) == ("resnet18", "batched", "auto")]
    goal = {"what": f"on a GPU, augmentation < {GOAL_AUG_SHARE:.0%} of a step (resnet18, batched, --amp auto)",
            "value": default[0]["aug_share"] if device.type == "cuda" and default else None}
    goal["met"] = None if goal["value"] is None else goal["value"] < GOAL_AUG_SHARE
    return {"rows": rows, "goal": goal}


# ---------------------------------------------------------------------------- tables and CLI

def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def goal_line(goal, value_text):
    """'Goal: <what>: <value>, MET' (or NOT MET, or not measured)."""
    if goal["met"] is None:
        return f"Goal: {goal['what']}: not measured here."
    return f"Goal: {goal['what']}: {value_text}, {'MET' if goal['met'] else 'NOT MET'}."


def tables(results):
    """The Markdown of every section in `results`."""
    m = results["meta"]
    out = [f"### Benchmarks on {m['device_name']} ({m['cpu_count']} CPU cores, {m['threads']} torch threads, "
           f"torch {m['torch']}, {m['profile']} sizes)", "",
           f"`{m['command']}` — {m['date']}; 1-min load average {m['loadavg_start']:.2f} at start, "
           f"{m['loadavg_end']:.2f} at the end", ""]
    if m["loadavg_start"] > 0.5:
        out += [f"**Warning:** the 1-min load average was {m['loadavg_start']:.2f} (> 0.5) at start: another "
                "process competes for the cores, and CPU throughput will read low.", ""]
    if "loss" in results:
        r = results["loss"]
        out += [f"**NT-Xent, forward + backward** (d = {r['rows'][0]['d']}, tau = {r['tau']}; ms, median). "
                "loop = SimCLR Algorithm 1 as a double Python loop; matmul = z @ z.T on the (2N, d) batch "
                "with its backward (3 products), the bound. ~ = extrapolated from the largest timed N "
                "as N^2, the loop's op count (not timed).", "",
                "| N | loop ms | nt_xent ms | matmul ms | loop / nt_xent | nt_xent / matmul |",
                "|---:|---:|---:|---:|---:|---:|"]
        for row in r["rows"]:
            ex = "~" if row["loop_extrapolated"] else ""
            out.append(f"| {row['N']} | {ex}{fmt(row['loop_ms'])} | {fmt(row['nt_xent_ms'], 3)} | "
                       f"{fmt(row['matmul_ms'], 3)} | {ex}{fmt(row['loop_speedup'], 0)}x | {fmt(row['matmul_ratio'], 2)}x |")
        out += ["", goal_line(r["goal"], f"{fmt(r['goal']['value'], 2)}x"), ""]
    if "aug" in results:
        r = results["aug"]
        out += [f"**Two-view augmentation** (`simclr` preset, batches of {r['batch']}, {r['images']} images; "
                "source images/s, each made into 2 views).", "",
                "| pipeline | device | images/s | vs torchvision |", "|---|---|---:|---:|"]
        out += [f"| {row['pipeline']} | {row['device']} | {fmt(row['img_per_s'], 0)} | {fmt(row['vs_torchvision'], 1)}x |"
                for row in r["rows"]]
        if m["device"] != "cuda":
            out.append("| BatchedAugment | cuda | skipped: no CUDA device | |")
        out += ["", goal_line(r["goal"], f"{fmt(r['goal']['value'], 1)}x"), ""]
    if "train" in results:
        r = results["train"]
        cuda = m["device"] == "cuda"
        mem = "peak GPU memory MB" if cuda else "peak RSS growth MB"
        out += ["**SimCLR pre-training step** (two views, forward, backward, SGD; pretrain.py's code; "
                "source images/s over the timed steps; the last row is `pretrain.py --recipe quick`'s step, "
                "its small multi-crop views included). aug share = time of making one batch's views "
                "(common.TwoViews) / step time.", "",
                f"| encoder | augmentation | precision | layout | batch | timed steps | images/s | step ms | {mem} | aug share |",
                "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for row in r["rows"]:
            memory = row.get("peak_mem_mb", row.get("peak_rss_growth_mb"))
            share = f"{row['aug_share']:.0%}" if "aug_share" in row else "n/a"
            encoder = row["encoder"] + (f" (`--recipe {row['recipe']}`, {row['small_crops']} small crops)"
                                        if row.get("recipe") else "")
            out.append(f"| {encoder} | {row['backend']} | {row['precision']} | {row.get('layout', 'channels_last')} | "
                       f"{row['batch']} | {row['steps']} | "
                       f"{fmt(row['img_per_s'])} | {fmt(row['step_ms'], 0)} | {fmt(memory, 0)} | {share} |")
        if not cuda:
            out += ["", "CUDA rows (fp32 against bf16 autocast, channels_last) skipped: no CUDA device. On the CPU the "
                    "memory column is the rise of the process's peak resident set (ru_maxrss), which only grows "
                    "when a row needs more than every row before it."]
        share = r["goal"]["value"]
        out += ["", goal_line(r["goal"], f"{share:.0%}" if share is not None else ""), ""]
    return "\n".join(out)


# The cost of work in "pre-training images" (one image made into two views, forward and backward):
# a forward pass of one image is about a sixth of it, a supervised step (one view, forward and
# backward) about a half. Used by --estimate: a rough model, right to within a factor of ~1.5.
FORWARD_COST, TRAIN_COST = 1 / 6, 1 / 2
PROCESS_SECONDS = 5  # starting Python and loading the cached arrays, per script run


def estimate(lines, device, amp="auto"):
    """Seconds that script runs take here. Each line is one run: "ENCODER PRETRAIN FORWARD TRAIN",
    the images it pre-trains on (counted once per step), passes forward only (features, kNN) and
    trains on with labels. One short timed pre-training step per encoder sets the scale."""
    runs = [line.split() for line in lines if line.strip()]
    per_image = {}
    for enc in sorted({run[0] for run in runs}):
        bs = 256 if enc == "convnet" or device.type == "cuda" else 64
        per_image[enc] = 1 / bench_train_one(device, enc, "batched", amp, bs, warmup=1, steps=2)["img_per_s"]
    work = sum((float(p) + FORWARD_COST * float(f) + TRAIN_COST * float(t)) * per_image[enc]
               for enc, p, f, t in runs)
    return work + PROCESS_SECONDS * len(runs), per_image


def sections(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(SECTIONS)}, got '{text}'")
    return [s for s in SECTIONS if s in names]


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (< 2 minutes on a 2-core CPU)")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # seconds; for tests/test_bench.py
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where loss and train run; auto = cuda when available. The aug section times the CPU "
                        "pipelines in any case and adds BatchedAugment on cuda (default: auto)")
    p.add_argument("--out", default="bench.json", help="JSON file with every number (default: bench.json)")
    p.add_argument("--only", type=sections, default=list(SECTIONS),
                   help="comma-separated sections among loss,aug,train (default: all three)")
    p.add_argument("--estimate", metavar="FILE",
                   help="instead: read work items (lines 'ENCODER KIND IMAGES', KIND pretrain/forward/train; "
                        "run_all.sh --dry-run writes them) and print how long they take here, from one "
                        "timed step per encoder")
    return p


def main(args=None):
    """Run the chosen sections; print their tables, write the JSON, return the results dict.
    `args` is a parsed Namespace or an argv list (None: the command line)."""
    if not isinstance(args, argparse.Namespace):
        args = build_parser().parse_args(args)
    device = common.resolve_device(args.device)
    common.keep_freed_memory()  # as the training scripts do (see there); before the loader forks
    if args.estimate:
        with open(args.estimate) as f:
            seconds, per_image = estimate(f.readlines(), device)
        timed = ", ".join(f"{enc} {1000 * t:.2f} ms/image" for enc, t in per_image.items())
        print(f"about {logs.duration_text(seconds)} on this machine ({common.device_name(device)}; "
              f"timed: {timed})")
        return seconds
    profile = "tiny" if args.tiny else "quick" if args.quick else "full"
    load = os.getloadavg()[0]  # 1-minute load average, as in /proc/loadavg
    if load > 0.5:
        log(f"warning: 1-min load average {load:.2f} > 0.5; the CPU figures will read low")
    results = {"meta": {"command": " ".join(["python", os.path.basename(sys.argv[0] or "bench.py")] + sys.argv[1:])
                        if __name__ == "__main__" else f"bench.main({vars(args)})",
                        "profile": profile, "device": device.type, "device_name": common.device_name(device),
                        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                        "threads": torch.get_num_threads(), "torch": torch.__version__,
                        "date": datetime.now().isoformat(timespec="seconds"), "loadavg_start": load,
                        "sizes": PROFILES[profile]}}
    run = {"loss": bench_loss, "aug": bench_aug, "train": bench_train}
    for name in args.only:
        results[name] = run[name](device, PROFILES[profile])
        common.write_json(args.out, results)  # a run cut short keeps the sections it finished
    results["meta"]["loadavg_end"] = os.getloadavg()[0]
    text = tables(results)
    print(text, flush=True)
    results["markdown"] = text
    common.write_json(args.out, results)
    log(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    raise SystemExit(common.run_cli(main, build_parser()))
