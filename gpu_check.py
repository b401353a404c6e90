"""The sections of gpu_check.sh, one per command; each prints its lines and writes its figures to
WORK/figures/<section>.json. gpu_check.sh runs them (each under a time limit) and then `summary`.

    python gpu_check.py ops --work /tmp/gpu_check --size full        # kernels per training step
    python gpu_check.py summary --work /tmp/gpu_check                 # the <= 40-line summary

--size toy runs every section at a size a CPU finishes in seconds (gpu_check.sh --cpu-dry-run);
--size full is what the GPU check measures. Not a module to import: a tool, like bench.py.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch

import common
import dist
import methods
import optim

SECTIONS = ("ops", "syncs", "ranks", "ddp_run", "throughput", "default_run", "summary")

# The sizes of each section: full on the GPU, toy for the CPU dry run.
SIZES = {
    "full": dict(encoder="resnet18", bs=512, ranks_bs=64, warmup=8, timed=30, images=5000, epochs=3,
                 run_bs=256, fraction=0.1, queue=4096),
    "toy": dict(encoder="convnet", bs=16, ranks_bs=16, warmup=1, timed=2, images=64, epochs=3,
                run_bs=16, fraction=1.0, queue=64),
}


def say(*parts):
    print(*parts, flush=True)


def figures_path(work, section):
    return os.path.join(work, "figures", f"{section}.json")


def save_figures(work, section, figures):
    os.makedirs(os.path.join(work, "figures"), exist_ok=True)
    common.write_json(figures_path(work, section), figures)


def device_and_dtypes():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    low = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    return device, low


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def pretrain_args(**overrides):
    """pretrain.py's parsed defaults, changed by `overrides` (checked and resolved as main() does)."""
    import pretrain
    a = pretrain.build_parser().parse_args([])
    for k, v in overrides.items():
        setattr(a, k, v)
    pretrain.check_args(a)
    return a


def random_images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g).numpy()


# ---------------------------------------------------------------------------- kernels per step

def count_ops(method_name, encoder, bs, device, queue):
    """Operations of one training step (after one warm-up step): CUDA kernels launched on a GPU;
    on a CPU the aten operations that call no other and compute something (not a view or an
    allocation): roughly what would each be a kernel on a GPU."""
    from torch.profiler import ProfilerActivity, profile
    torch.manual_seed(0)
    m = methods.build_method(method_name, encoder, "bn", 128, queue_size=queue).to(device)
    opt = optim.sgd(m.parameters(), 0.1, 5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    x1, x2 = torch.randn(bs, 3, 32, 32, device=device), torch.randn(bs, 3, 32, 32, device=device)
    idx = torch.arange(bs, device=device)

    def step():
        common.ssl_step(m, x1, x2, opt, scaler, None, idx)
        m.after_step(1, 100)
    step()
    sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        step()
        sync(device)
    events = prof.events()
    if device.type == "cuda":
        return sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    parents = {e.cpu_parent.id for e in events if e.cpu_parent is not None}
    return sum(1 for e in events if e.name.startswith("aten::") and e.id not in parents and e.name not in NOT_KERNELS)


# aten operations that launch no kernel on a GPU (views, allocations, metadata): not counted on a CPU
NOT_KERNELS = {
    "aten::view", "aten::as_strided", "aten::as_strided_", "aten::empty", "aten::empty_strided", "aten::resize_",
    "aten::resolve_conj", "aten::resolve_neg", "aten::_reshape_alias", "aten::expand", "aten::t", "aten::transpose",
    "aten::unsqueeze", "aten::squeeze", "aten::permute", "aten::detach", "aten::alias", "aten::slice",
    "aten::select", "aten::_unsafe_view", "aten::lift_fresh", "aten::set_", "aten::empty_like", "aten::unbind",
    "aten::split", "aten::chunk", "aten::narrow", "aten::reshape", "aten::contiguous", "aten::to",
    "aten::_to_copy", "aten::detach_", "aten::result_type", "aten::scalar_tensor"}


def section_ops(work, size, device, low):
    s = SIZES[size]
    figures = {}
    for name in ("simclr", "moco", "byol"):
        n = count_ops(name, s["encoder"], s["bs"], device, s["queue"])
        figures[name] = n
        say(f"{name}: {n} {'CUDA kernels' if device.type == 'cuda' else 'compute aten ops'} per step "
            f"({s['encoder']}, bs {s['bs']})")
    save_figures(work, "ops", {"unit": "CUDA kernels" if device.type == "cuda" else "compute aten ops",
                               "bs": s["bs"], "encoder": s["encoder"], **figures})


# ---------------------------------------------------------------------------- host-device syncs of global BN

def section_syncs(work, size, device, low):
    """Host-device syncs in one SimCLR step with nn.SyncBatchNorm against dist.GlobalBatchNorm, under
    a fake two-rank process group (collectives do nothing; what is counted is the BatchNorm's own
    waits), counted by CUDA's sync debug mode. Needs a GPU: SyncBatchNorm refuses CPU tensors."""
    if device.type != "cuda":
        say("skipped: needs CUDA (nn.SyncBatchNorm refuses CPU tensors)")
        save_figures(work, "syncs", {"skipped": "cpu"})
        return
    import warnings
    import torch.distributed as td
    from torch.testing._internal.distributed.fake_pg import FakeStore
    td.init_process_group("fake", store=FakeStore(), rank=0, world_size=2)
    s = SIZES[size]
    figures = {}
    try:
        for kind in ("SyncBatchNorm", "GlobalBatchNorm"):
            torch.manual_seed(0)
            m = methods.build_method("simclr", s["encoder"], "bn", 128).to(device)
            if kind == "SyncBatchNorm":
                m = torch.nn.SyncBatchNorm.convert_sync_batchnorm(m)
            else:
                dist.convert_sync_batchnorm(m)
            opt = optim.sgd(m.parameters(), 0.1, 5e-4)
            scaler = torch.amp.GradScaler("cuda", enabled=False)
            x1, x2 = (torch.randn(s["bs"] // 2, 3, 32, 32, device=device) for _ in range(2))
            common.ssl_step(m, x1, x2, opt, scaler, low)
            sync(device)
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    common.ssl_step(m, x1, x2, opt, scaler, low)
            finally:
                torch.cuda.set_sync_debug_mode(0)
            n = sum("synchroniz" in str(w.message) for w in caught)
            figures[kind] = n
            say(f"{kind}: {n} host-device syncs in one SimCLR step ({s['encoder']}, bs {s['bs'] // 2} per rank)")
    finally:
        td.destroy_process_group()
    save_figures(work, "syncs", figures)


# ---------------------------------------------------------------------------- two ranks = one

def _fixed_keys(moco):
    def key(x):
        with torch.no_grad():
            moco.key_encoder.eval(), moco.key_head.eval()
            return moco.key_head(moco.key_encoder(x))
    return key


def _loss_and_grads(name, encoder, x1, x2, idx, dtype, device, queue, share=None):
    """The loss and gradients of objective `name` (built from seed 0) on (x1, x2); share: this
    rank's slice of the batch, under global BN and DDP (None: one process, the whole batch)."""
    torch.manual_seed(0)
    m = methods.build_method(name, encoder, "bn", 128, queue_size=queue).to(device)
    if name == "moco":
        m.bn_groups = 1
        m.key = _fixed_keys(m)
    model = m
    if share is not None:
        dist.convert_sync_batchnorm(m, skip=m.local_bn)
        model = torch.nn.parallel.DistributedDataParallel(m, device_ids=[device] if device.type == "cuda" else None)
        x1, x2, idx = x1[share], x2[share], idx[share]
    m.train()
    with common.autocast(device, dtype):
        loss, _ = model(x1, x2, idx)
    loss.float().backward()
    grads = torch.cat([p.grad.detach().float().flatten() for p in m.parameters() if p.grad is not None])
    return dist.all_reduce_mean(loss.detach().float()) if share is not None else loss.detach().float(), grads


def section_ranks(work, size, device, low):
    """Run under torchrun with two ranks (on one GPU: SSL_DIST_BACKEND=gloo): each objective's loss
    and gradients on 2 ranks x bs/2 against 1 process x bs, in fp32 and in low precision."""
    s = SIZES[size]
    device = dist.init(device)
    if device.type == "cuda":  # the fp32 comparison in true fp32: no TF32 in convolutions or products
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    rank, world = dist.rank(), dist.world_size()
    g = torch.Generator().manual_seed(1)
    bs = s["ranks_bs"]
    x1 = torch.nn.functional.interpolate(torch.randn(bs, 3, 4, 4, generator=g), size=32, mode="bilinear")
    x2 = x1 + 0.3 * torch.nn.functional.interpolate(torch.randn(bs, 3, 4, 4, generator=g), size=32, mode="bilinear")
    x1, x2, idx = x1.to(device), x2.to(device), torch.arange(bs, device=device)
    n = bs // world
    figures = {"world": world}
    real_active = dist.active
    fp32_grads = {}
    for dtype in (None, low):
        for name in ("simclr", "moco", "byol"):
            dist.active = lambda: False  # the one-process reference, computed in this process
            try:
                ref_loss, ref_grads = _loss_and_grads(name, s["encoder"], x1, x2, idx, dtype, device, s["queue"])
            finally:
                dist.active = real_active
            fp32_grads.setdefault(name, ref_grads)
            loss, grads = _loss_and_grads(name, s["encoder"], x1, x2, idx, dtype, device, s["queue"],
                                          share=slice(rank * n, (rank + 1) * n))
            key = f"{name}_{common.precision_name(dtype)}"
            rel = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
            # floor: how far this precision's one-process gradient is from fp32's (its own rounding)
            figures[key] = {"loss_rel": abs(loss.item() - ref_loss.item()) / abs(ref_loss.item()),
                            "grad_rel": rel(grads, ref_grads), "floor": rel(ref_grads, fp32_grads[name])}
            if dist.is_main():
                say(f"{key}: 2 ranks vs 1 process: loss rel err {figures[key]['loss_rel']:.2e}, gradient rel err "
                    f"{figures[key]['grad_rel']:.2e} (this precision vs fp32 in one process: {figures[key]['floor']:.2e})")
    if dist.is_main():
        save_figures(work, "ranks", figures)
    dist.shutdown()


# ---------------------------------------------------------------------------- a two-rank pre-training

def section_ddp_run(work, size, device, low, data_dir):
    """Run under torchrun with two ranks: pretrain.main for one epoch; afterwards every rank's
    per-parameter (and buffer) checksums, compared on rank 0."""
    import pretrain
    s = SIZES[size]
    out = os.path.join(work, "runs", "two_ranks")
    real_train = pretrain.train
    sums = {}

    def train(args, method, *rest, **kw):
        real_train(args, method, *rest, **kw)
        sums.update({k: v.double().sum().item() for k, v in method.state_dict().items() if v.is_floating_point()})
    pretrain.train = train
    args = pretrain.build_parser().parse_args([
        "--data-dir", data_dir, "--no-download", "--encoder", s["encoder"], "--bs", str(s["run_bs"]),
        "--epochs", "1", "--knn-every", "0", "--fraction", str(s["fraction"]), "--workers", "0",
        "--out-dir", out, "--device", device.type])
    t0 = time.time()
    pretrain.main(args)
    every = dist.all_gather_object(sums)
    if dist.is_main():
        differ = [k for k in every[0] if any(other.get(k) != every[0][k] for other in every[1:])]
        figures = {"world": len(every), "tensors": len(every[0]), "differing": len(differ),
                   "first_differing": differ[:3], "seconds": time.time() - t0}
        say(f"{len(every)} ranks, 1 epoch: {len(every[0])} parameter/buffer checksums, {len(differ)} differ across ranks")
        save_figures(work, "ddp_run", figures)
    dist.shutdown()


# ---------------------------------------------------------------------------- throughput

def time_steps(args, device, dtype, warmup, timed, images):
    """Steady-state training steps of pretrain.py's model and step: (ms per step on the device,
    host ms per step, peak memory MiB, augmentation ms per step, seconds to compile/warm up)."""
    import pretrain
    torch.manual_seed(0)
    method = pretrain.build_method(args, device)
    views = common.TwoViews(images, args, device)
    lr = optim.scaled_lr(args.lr, args.bs, args.lr_scaling)
    opt = (optim.lars if args.optimizer == "lars" else optim.sgd)(method.parameters(), lr, args.wd)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    model = pretrain.wrap(method, args, device)

    def batches():
        epoch = 0
        while True:
            yield from views.epoch(epoch)
            epoch += 1
    it = batches()

    def step(i):
        x1, x2, idx = next(it)
        optim.set_lr(opt, optim.lr_at(i, 1000, lr, 10))
        common.ssl_step(model, x1, x2, opt, scaler, dtype, idx)
        method.after_step(i + 1, 1000)
    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    sync(device)
    warm_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
    h0 = time.perf_counter()
    for i in range(warmup, warmup + timed):
        step(i)
    host_ms = (time.perf_counter() - h0) * 1000 / timed  # time to issue a step (the host runs ahead)
    if device.type == "cuda":
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / timed
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
    else:
        ms, peak = host_ms, float("nan")
    # the augmentation alone: the same batches through views.epoch, without the model
    if views.batched:
        aug = views.epoch(0)
        next(aug)
        sync(device)
        a0 = time.perf_counter()
        k = min(timed, views.steps - 1)
        for _ in range(k):
            next(aug)
        sync(device)
        aug_ms = (time.perf_counter() - a0) * 1000 / max(1, k)
    else:
        aug_ms = float("nan")
    return ms, host_ms, peak, aug_ms, warm_s


def section_throughput(work, size, device, low):
    s = SIZES[size]
    images = random_images(s["images"])
    rows = []
    plan = [(m, o, s["bs"], low, False) for m in ("simclr", "moco", "byol") for o in ("sgd", "lars")]
    plan += [("simclr", "sgd", s["bs"], None, False), ("simclr", "sgd", s["bs"] // 2, low, False),
             ("simclr", "sgd", s["bs"] * 2, low, False)]
    if size == "full":  # compiling takes minutes on a 2-core CPU: tests/test_pretrain_steps.py covers it there
        plan.append(("simclr", "sgd", s["bs"], low, True))
    say("| method | opt | bs | precision | img/s | ms/step | host ms/step | peak MiB | aug ms | CIFAR-10 epoch s |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for method, opt, bs, dtype, compiled in plan:
        amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        args = pretrain_args(method=method, optimizer=opt, bs=bs, encoder=s["encoder"], amp=amp, compile=compiled,
                             queue_size=max(s["queue"], 2 * bs), out_dir=os.path.join(work, "unused"))
        warmup = s["warmup"] + (2 if compiled else 0)
        try:
            ms, host, peak, aug, warm_s = time_steps(args, device, dtype, warmup, s["timed"], images)
        except Exception as e:  # one failing row (memory, a compiler) must not hide the others
            say(f"| {method} | {opt} | {bs} | {common.precision_name(dtype)} | failed: {type(e).__name__}: "
                f"{str(e).splitlines()[0][:100]} |")
            rows.append({"method": method, "optimizer": opt, "bs": bs, "precision": common.precision_name(dtype),
                         "compile": compiled, "error": f"{type(e).__name__}: {str(e)[:200]}"})
            continue
        row = {"method": method, "optimizer": opt, "bs": bs, "precision": common.precision_name(dtype),
               "compile": compiled, "img_per_s": bs / ms * 1000, "ms_per_step": ms, "host_ms_per_step": host,
               "peak_mib": peak, "aug_ms": aug, "cifar10_epoch_s": 50000 / (bs / ms * 1000),
               "warmup_s": warm_s}
        rows.append(row)
        say(f"| {method}{' (compile)' if compiled else ''} | {opt} | {bs} | {row['precision']} | {row['img_per_s']:.0f} "
            f"| {ms:.1f} | {host:.1f} | {peak:.0f} | {aug:.1f} | {row['cifar10_epoch_s']:.1f} |"
            + (f" warm-up incl. compile {warm_s:.0f} s" if compiled else ""))
        # after every row: a section stopped by its time limit keeps the rows it measured
        save_figures(work, "throughput", {"rows": rows, "encoder": s["encoder"], "timed_steps": s["timed"]})


# ---------------------------------------------------------------------------- the default run

class _Stop(Exception):
    pass


def section_default_run(work, size, device, low, data_dir):
    """The default recipe for a few epochs: epoch time after the first, checkpoint ms, kNN s; then
    --deterministic: a run stopped after its first epoch and resumed equals the uninterrupted one
    (max weight difference), and what --deterministic costs; then linear_eval.py for one epoch."""
    import pretrain
    s = SIZES[size]
    base = ["--data-dir", data_dir, "--no-download", "--encoder", s["encoder"], "--bs", str(s["run_bs"]),
            "--fraction", str(s["fraction"]), "--workers", "0", "--device", device.type]
    timings = {"save": [], "knn": []}
    real_save, real_knn = common.save_atomic, common.extract_features

    def save(obj, path):
        sync(device)
        t0 = time.perf_counter()
        real_save(obj, path)
        timings["save"].append((time.perf_counter() - t0) * 1000)

    def features(*a, **k):
        t0 = time.perf_counter()
        out = real_knn(*a, **k)
        timings["knn"].append(time.perf_counter() - t0)
        return out
    common.save_atomic, common.extract_features = save, features
    default = os.path.join(work, "runs", "default")
    pretrain.main(pretrain.build_parser().parse_args(base + ["--epochs", str(s["epochs"]), "--knn-every", "1",
                                                             "--out-dir", default]))
    common.save_atomic, common.extract_features = real_save, real_knn
    rows = [json.loads(line) for line in open(os.path.join(default, "metrics.jsonl"))]
    figures = {"epoch_s": [r["seconds"] for r in rows], "img_per_s": [r["img_per_s"] for r in rows],
               "loss": [r["loss"] for r in rows], "knn_top1": [r.get("knn_top1") for r in rows],
               "checkpoint_ms": timings["save"][:len(rows)], "knn_s": sum(timings["knn"]) / max(1, len(rows))}
    steady = figures["epoch_s"][1:] or figures["epoch_s"]
    say(f"default run ({s['encoder']}, bs {s['run_bs']}): epoch s {[round(x, 2) for x in figures['epoch_s']]}, "
        f"after warm-up {sum(steady) / len(steady):.2f} s; checkpoint "
        f"{sum(figures['checkpoint_ms']) / max(1, len(figures['checkpoint_ms'])):.0f} ms; kNN {figures['knn_s']:.2f} s")
    save_figures(work, "default_run", figures)  # kept if a later part runs out of time

    det = base + ["--epochs", "2", "--knn-every", "0", "--deterministic", "--warmup-epochs", "0"]
    a, b = os.path.join(work, "runs", "det_a"), os.path.join(work, "runs", "det_b")
    t0 = time.time()
    pretrain.main(pretrain.build_parser().parse_args(det + ["--out-dir", a]))
    det_s = [json.loads(line)["seconds"] for line in open(os.path.join(a, "metrics.jsonl"))]
    real_epoch = common.TwoViews.epoch

    def stop_in_second(self, e):
        if e == 1:
            raise _Stop
        yield from real_epoch(self, e)
    common.TwoViews.epoch = stop_in_second
    try:
        pretrain.main(pretrain.build_parser().parse_args(det + ["--out-dir", b]))
    except _Stop:
        pass
    common.TwoViews.epoch = real_epoch
    pretrain.main(pretrain.build_parser().parse_args(det + ["--out-dir", b]))  # resumes after epoch 1
    ea, eb = (torch.load(os.path.join(d, "encoder.pt"), weights_only=False)["state_dict"] for d in (a, b))
    diff = max((ea[k].float() - eb[k].float()).abs().max().item() for k in ea)
    figures.update(deterministic_resume_max_diff=diff, deterministic_epoch_s=det_s[-1],
                   deterministic_total_s=time.time() - t0)
    say(f"--deterministic: resumed vs uninterrupted max abs weight difference {diff:.3g}; "
        f"epoch {det_s[-1]:.2f} s vs {steady[-1]:.2f} s without")
    save_figures(work, "default_run", figures)
    ev = subprocess.run([sys.executable, "linear_eval.py", "--data-dir", data_dir, "--no-download", "--ckpt", default,
                         "--epochs", "1", "--workers", "0", "--device", device.type, "--bs", str(s["run_bs"])],
                        capture_output=True, text=True, timeout=600)
    print(ev.stdout[-3000:], ev.stderr[-3000:], flush=True)
    figures["linear_eval_rc"] = ev.returncode
    if ev.returncode == 0:
        result = common.read_json(os.path.join(default, "linear_eval.json"))
        figures["linear_eval_test_acc"] = result.get("test_acc")
        figures["linear_eval_seconds"] = result.get("seconds")
        say(f"linear_eval.py, 1 epoch: test acc {result.get('test_acc')}")
    save_figures(work, "default_run", figures)


# ---------------------------------------------------------------------------- summary

def _load(work, section):
    path = figures_path(work, section)
    return common.read_json(path) if os.path.exists(path) else None


def _f(x, spec=".2e"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def section_summary(work, status_file, out_json):
    """At most 40 lines: each section's status, then its figures; all figures in one JSON."""
    status = [line.rstrip("\n") for line in open(status_file)] if os.path.exists(status_file) else []
    every = {s: _load(work, s) for s in SECTIONS[:-1]}
    lines = ["GPU CHECK SUMMARY"] + status
    ops = every["ops"]
    if ops:
        lines.append(f"ops per step ({ops['unit']}, {ops['encoder']}, bs {ops['bs']}): simclr {ops['simclr']}, "
                     f"moco {ops['moco']}, byol {ops['byol']}")
    syncs = every["syncs"]
    if syncs and "skipped" not in syncs:
        lines.append(f"host syncs per SimCLR step: nn.SyncBatchNorm {syncs['SyncBatchNorm']}, "
                     f"GlobalBatchNorm {syncs['GlobalBatchNorm']}")
    ranks = every["ranks"]
    if ranks:
        parts = [f"{k} {_f(v['loss_rel'], '.1e')}/{_f(v['grad_rel'], '.1e')}" + (f" (floor {_f(v.get('floor'), '.1e')})" if v.get("floor") else "")
                 for k, v in ranks.items() if isinstance(v, dict)]
        lines.append("2 ranks vs 1 (loss/grad rel err): " + ", ".join(parts[:3]))
        if parts[3:]:
            lines.append("    " + ", ".join(parts[3:]))
    run = every["ddp_run"]
    if run:
        lines.append(f"two-rank 1-epoch run: {run['tensors']} checksums, {run['differing']} differ across ranks "
                     f"({run['seconds']:.0f} s)")
    tp = every["throughput"]
    if tp:
        lines.append(f"throughput ({tp['encoder']}): method opt bs prec | img/s ms host-ms MiB aug-ms epoch-s")
        for r in tp["rows"][:12]:
            name = f"  {r['method']}{'+compile' if r['compile'] else ''} {r['optimizer']} {r['bs']} {r['precision']}"
            if "error" in r:
                lines.append(f"{name} | failed: {r['error'][:60]}")
            else:
                lines.append(f"{name} | {r['img_per_s']:.0f} {r['ms_per_step']:.1f} {r['host_ms_per_step']:.1f} "
                             f"{_f(r['peak_mib'], '.0f')} {_f(r['aug_ms'], '.1f')} {r['cifar10_epoch_s']:.1f}"
                             + (f" (warm-up {r['warmup_s']:.0f} s)" if r["compile"] else ""))
    d = every["default_run"]
    if d:
        steady = d["epoch_s"][1:] or d["epoch_s"]
        lines.append(f"default run: epoch s {', '.join(f'{x:.2f}' for x in d['epoch_s'])} (steady "
                     f"{sum(steady) / len(steady):.2f}); ckpt ms {', '.join(f'{x:.0f}' for x in d['checkpoint_ms'])}; "
                     f"kNN {d['knn_s']:.2f} s")
        lines.append(f"  loss {', '.join(f'{x:.3f}' for x in d['loss'])}; kNN top-1 {d['knn_top1']}")
        lines.append(f"  deterministic resume max diff {_f(d.get('deterministic_resume_max_diff'), '.3g')}; "
                     f"deterministic epoch {_f(d.get('deterministic_epoch_s'), '.2f')} s; linear_eval 1 epoch: "
                     f"rc {d.get('linear_eval_rc')}, test acc {d.get('linear_eval_test_acc')}")
    common.write_json(out_json, every)
    lines = lines[:40]
    print("\n".join(lines), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=SECTIONS)
    p.add_argument("--work", required=True, help="folder for everything bulky (runs, figures)")
    p.add_argument("--size", choices=tuple(SIZES), default="full")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--status", help="summary: the file of section status lines")
    p.add_argument("--out-json", help="summary: where to write every figure as one JSON")
    a = p.parse_args(argv)
    device, low = device_and_dtypes()
    if a.section == "summary":
        return section_summary(a.work, a.status, a.out_json)
    if a.section in ("ddp_run", "default_run"):
        return globals()[f"section_{a.section}"](a.work, a.size, device, low, a.data_dir)
    return globals()[f"section_{a.section}"](a.work, a.size, device, low)


if __name__ == "__main__":
    main()
