"""Time to accuracy: what a pre-training recipe reaches in a given number of wall-clock minutes.

    python time_to_accuracy.py --data-dir data/cifar10-jpg --no-download --minutes 1 3 --seeds 0 1 2
    python time_to_accuracy.py --data-dir data/cifar10-jpg --no-download --recipes quick --minutes 30 --seeds 0
    python time_to_accuracy.py --data-dir data/cifar10-jpg --no-download --recipes quick --default-run
    python time_to_accuracy.py --table-only                 # rebuild the table and figure from the records

Throughput alone can mislead (a faster step that learns less per step is no gain), so this
measures the product: for each recipe and budget it times the recipe's step on this machine
(`pretrain.py --epochs 3`, the last epoch's images/s), turns the budget into a number of steps,
pre-trains for exactly those steps (the learning-rate schedule is then the whole budget's, not a
run cut short), and evaluates the encoder with the project's linear protocol (`linear_eval.py`,
30 epochs on h, the quick grid's) and the kNN monitor against its fixed bank. The floor is each
encoder's untrained linear accuracy (`linear_eval.py --random-init`), over the same seeds.

Recipes (RECIPES below): `old`, the quick grid's recipe before the time-to-accuracy work
(convnet, tau 0.5, the simclr views, bs 256); `quick_v1`, the first quick recipe (quicknet,
tau 0.2, crop_color + 2 small crops, bs 256); `quick_v2`, the second (tau 0.1, bs 128); and
`quick`, `pretrain.py --recipe quick` (quick_v2 with crops of 20-100% of the image).

--default-run also measures the quick recipe's own run, `pretrain.py --recipe quick` exactly as a
user types it (its own epochs, kNN monitor and checkpoint), one per seed: the seconds of its steps
and the wall-clock seconds of the whole command (start-up, data, kNN monitor and saving included).

Writes, under --out (default results/tta): runs/<recipe>_<minutes>m_s<seed>/ with the small
records of each run (config.json, metrics.jsonl, linear_eval.json; no weights), quick_default_s<seed>/ (the same and
wall.json) for --default-run, floor_<encoder>_s<seed>/,
TTA.md (the table) and tta.png (accuracy against minutes, the floors as bands). Runs already
recorded are skipped, so the command resumes; weights go to --work (default runs/tta).
Time only on an idle machine: the budget is wall-clock time.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import stats

# name -> (pretrain.py flags, encoder, label in the table); epochs and steps come from the budget
RECIPES = {
    "old": (["--encoder", "convnet", "--tau", "0.5", "--aug", "simclr", "--bs", "256"], "convnet",
            "old quick recipe: convnet, tau 0.5, simclr views"),
    "quick_v1": (["--encoder", "quicknet", "--tau", "0.2", "--aug", "crop_color", "--small-crops", "2", "--bs", "256"],
                 "quicknet", "first quick recipe: quicknet, tau 0.2, crop_color + 2 small crops, bs 256"),
    "quick_v2": (["--encoder", "quicknet", "--tau", "0.1", "--aug", "crop_color", "--small-crops", "2", "--bs", "128"],
                 "quicknet", "second quick recipe: quick_v1 at tau 0.1, bs 128"),
    "quick": (["--recipe", "quick"], "quicknet", "pretrain.py --recipe quick"),
}
LINEAR_EPOCHS = 30  # the quick grid's linear protocol
HERE = os.path.dirname(os.path.abspath(__file__))
KEEP = ("config.json", "metrics.jsonl", "linear_eval.json", "wall.json")  # the records; never the weights
DEFAULT = "quick_default"  # the run name of --default-run: pretrain.py --recipe quick as it is


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", choices=tuple(RECIPES), default=list(RECIPES),
                   help="recipes to measure (default: all)")
    p.add_argument("--minutes", nargs="*", type=float, default=[1.0, 3.0],
                   help="pre-training budgets in wall-clock minutes; none with --default-run alone (default: 1 3)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--data-dir", default="data", help="CIFAR-10 folder, as for pretrain.py (default: data)")
    p.add_argument("--no-download", action="store_true", help="never use the network")
    p.add_argument("--out", default=os.path.join("results", "tta"), help="records, table, figure (default: results/tta)")
    p.add_argument("--work", default=os.path.join("runs", "tta"), help="run directories with weights (default: runs/tta)")
    p.add_argument("--default-run", action="store_true",
                   help="also run `pretrain.py --recipe quick` as it is (its own epochs), per seed, timing the "
                        "whole command: the quick recipe's goal (default: off)")
    p.add_argument("--table-only", action="store_true", help="only rebuild TTA.md and tta.png from the records")
    p.add_argument("--extra", default="", help="more pretrain.py flags for every run, e.g. '--workers 0' (default: none)")
    p.add_argument("--linear-epochs", type=int, default=LINEAR_EPOCHS,
                   help=f"linear_eval.py epochs (default: {LINEAR_EPOCHS}, the quick grid's)")
    return p


def script(name):
    return [sys.executable, os.path.join(HERE, name)]


def run(cmd, log):
    """Run a script, its output into `log`; a failure stops everything with the log's last lines.
    Returns the command's wall-clock seconds."""
    start = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if code:
        tail = open(log).read().strip().splitlines()[-3:]
        raise SystemExit(f"time_to_accuracy.py: {' '.join(cmd[:2])} failed (see {log}):\n  " + "\n  ".join(tail))
    return seconds


def throughput(recipe, args):
    """(images per second, batch size) of a recipe's pre-training on this machine: the last of 3
    short epochs (the first pays for start-up)."""
    work = os.path.join(args.work, f"calibrate_{recipe}")
    shutil.rmtree(work, ignore_errors=True)
    run(script("pretrain.py") + pretrain_flags(recipe, args) + ["--epochs", "3", "--knn-every", "0", "--out-dir", work],
        work + ".log")
    with open(os.path.join(work, "metrics.jsonl")) as f:
        speed = [json.loads(line) for line in f][-1]["img_per_s"]
    with open(os.path.join(work, "config.json")) as f:
        return speed, json.load(f)["args"]["bs"]


def data_flags(args):
    return ["--data-dir", args.data_dir, "--device", "cpu"] + (["--no-download"] if args.no_download else [])


def pretrain_flags(recipe, args):
    return RECIPES[recipe][0] + data_flags(args) + args.extra.split()


def keep_records(src, dest):
    os.makedirs(dest, exist_ok=True)
    for name in KEEP:
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dest, name))


def measure(args):
    """Every (recipe, budget, seed) run and every floor not recorded yet under args.out."""
    os.makedirs(args.work, exist_ok=True)
    evaluate = script("linear_eval.py") + data_flags(args) + ["--epochs", str(args.linear_epochs)]
    for recipe in args.recipes:
        measured = None  # (images/s, bs), timed once per recipe, before its first run
        for minutes in args.minutes:
            for seed in args.seeds:
                name = f"{recipe}_{minutes:g}m_s{seed}"
                dest = os.path.join(args.out, "runs", name)
                if os.path.exists(os.path.join(dest, "linear_eval.json")):
                    continue
                measured = measured or throughput(recipe, args)
                speed, bs = measured
                steps = max(1, round(minutes * 60 * speed / bs))
                work = os.path.join(args.work, name)
                print(f"{name}: {steps} steps at bs {bs} ({speed:.0f} img/s measured here)", flush=True)
                run(script("pretrain.py") + pretrain_flags(recipe, args) + [
                    "--seed", str(seed), "--steps", str(steps), "--knn-every", "1000000", "--out-dir", work], work + ".log")
                run(evaluate + ["--ckpt", work], work + ".eval.log")
                keep_records(work, dest)
    for seed in args.seeds if args.default_run else []:
        name = f"{DEFAULT}_s{seed}"
        dest = os.path.join(args.out, "runs", name)
        if os.path.exists(os.path.join(dest, "linear_eval.json")):
            continue
        work = os.path.join(args.work, name)
        shutil.rmtree(work, ignore_errors=True)  # a killed run is measured again from its start, not resumed
        cmd = script("pretrain.py") + pretrain_flags("quick", args) + ["--seed", str(seed), "--out-dir", work]
        print(f"{name}: pretrain.py --recipe quick as it is, timed", flush=True)
        wall = run(cmd, work + ".log")
        with open(os.path.join(work, "wall.json"), "w") as f:
            json.dump({"wall_s": wall, "command": ["pretrain.py"] + cmd[2:]}, f, indent=1)
        run(evaluate + ["--ckpt", work], work + ".eval.log")
        keep_records(work, dest)
    encoders = ({RECIPES[r][1] for r in args.recipes} if args.minutes else set()) | (
        {RECIPES["quick"][1]} if args.default_run else set())  # the floors of what was measured
    for encoder in sorted(encoders):
        for seed in args.seeds:
            dest = os.path.join(args.out, "runs", f"floor_{encoder}_s{seed}")
            if not os.path.exists(os.path.join(dest, "linear_eval.json")):
                work = os.path.join(args.work, f"floor_{encoder}_s{seed}")
                print(f"floor_{encoder}_s{seed}: the untrained encoder", flush=True)
                run(evaluate + ["--random-init", "--encoder", encoder, "--seed", str(seed), "--out-dir", work],
                    work + ".log")
                keep_records(work, dest)


# ---------------------------------------------------------------------------- the table (records only)

def load(out):
    """{name: {"config": ..., "metrics": [...], "linear": ...}} of every recorded run under out/runs."""
    runs = {}
    root = os.path.join(out, "runs")
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        d = os.path.join(root, name)
        if not os.path.exists(os.path.join(d, "linear_eval.json")):
            continue
        rec = {"linear": json.load(open(os.path.join(d, "linear_eval.json")))}
        if os.path.exists(os.path.join(d, "metrics.jsonl")):
            rec["metrics"] = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
        if os.path.exists(os.path.join(d, "wall.json")):
            rec["wall_s"] = json.load(open(os.path.join(d, "wall.json")))["wall_s"]
        runs[name] = rec
    return runs


def mean_std(values):
    """(mean, sample standard deviation; nan for one value): the report's estimate (stats.py)."""
    return stats.mean_sd_n(values)[:2]


def over_floor(acc, floor):
    """The mean gain over the encoder's untrained floor, ± the two spreads combined; n/a without a floor."""
    if not floor:
        return "n/a"
    (a_m, a_s), (f_m, f_s) = mean_std(acc), mean_std(floor)
    spread = (a_s ** 2 + f_s ** 2) ** 0.5 if len(acc) > 1 and len(floor) > 1 else None
    return f"{a_m - f_m:+.2f}" + (f" ± {spread:.2f}" if spread is not None else "")


def fmt(values):
    m, s = mean_std(values)
    return f"{m:.2f}" + (f" ± {s:.2f}" if len(values) > 1 else " (n = 1)")


def cells(runs):
    """{(recipe, minutes): [run, ...]}, {encoder: [floor accuracy, ...]} and the default runs
    [run, ...] from run names."""
    groups, floors, default = {}, {}, []
    for name, rec in runs.items():
        head, seed = name.rsplit("_s", 1)
        if head.startswith("floor_"):
            floors.setdefault(head[len("floor_"):], []).append(rec["linear"]["test_acc"])
        elif head == DEFAULT:
            default.append(rec)
        else:
            recipe, minutes = head.rsplit("_", 1)
            groups.setdefault((recipe, float(minutes[:-1])), []).append(rec)
    return groups, floors, default


def table(out):
    """TTA.md and tta.png from the records under `out`; returns the markdown."""
    groups, floors, default = cells(load(out))
    lines = ["| recipe | budget | pre-training s | steps (epochs) | linear top-1 % | over its floor | kNN top-1 % | n |",
             "|---|---|---|---|---|---|---|---|"] if groups else []  # no budget runs (--default-run alone): no table
    for (recipe, minutes), recs in sorted(groups.items()):
        encoder = RECIPES[recipe][1] if recipe in RECIPES else "?"
        acc = [r["linear"]["test_acc"] for r in recs]
        seconds = [sum(m["seconds"] for m in r["metrics"]) for r in recs]
        steps = sorted({r["metrics"][-1]["step"] for r in recs})  # a budget's steps come from each run's timing
        epochs = sorted({len(r["metrics"]) for r in recs})
        span = lambda v: f"{v[0]}" if len(v) == 1 else f"{v[0]}–{v[-1]}"  # noqa: E731
        knn = [r["metrics"][-1]["knn_top1"] for r in recs if "knn_top1" in r["metrics"][-1]]
        gain = over_floor(acc, floors.get(encoder))
        lines.append(f"| {recipe} | {minutes:g} min | {mean_std(seconds)[0]:.0f} | {span(steps)} ({span(epochs)}) "
                     f"| {fmt(acc)} | {gain} | {fmt(knn) if knn else 'n/a'} | {len(recs)} |")
    if default:
        acc = [r["linear"]["test_acc"] for r in default]
        knn = [r["metrics"][-1]["knn_top1"] for r in default if "knn_top1" in r["metrics"][-1]]
        lines += [""] * bool(lines) + ["The quick recipe's own run, `pretrain.py --recipe quick` as it is (`--default-run`); "
                      "wall s: the whole command, start-up, kNN monitor and saving included.", "",
                  "| run | epochs (steps) | pre-training s | wall s (max) | linear top-1 % | over its floor | kNN top-1 % | n |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| pretrain.py --recipe quick | {len(default[0]['metrics'])} ({default[0]['metrics'][-1]['step']}) "
                  f"| {mean_std([sum(m['seconds'] for m in r['metrics']) for r in default])[0]:.0f} "
                  f"| {mean_std([r['wall_s'] for r in default])[0]:.0f} ({max(r['wall_s'] for r in default):.0f}) "
                  f"| {fmt(acc)} | {over_floor(acc, floors.get(RECIPES['quick'][1]))} | {fmt(knn) if knn else 'n/a'} "
                  f"| {len(default)} |"]
    lines += ["", "| encoder | untrained (random-init) linear top-1 % | n |", "|---|---|---|"]
    lines += [f"| {e} | {fmt(v)} | {len(v)} |" for e, v in sorted(floors.items())]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "TTA.md"), "w") as f:
        f.write("# Time to accuracy\n\nMade by `python time_to_accuracy.py` (see its docstring); mean ± "
                "standard deviation over the seeds. Pre-training s: the epochs' seconds (steps only).\n\n"
                + text)
    figure(groups, floors, default, os.path.join(out, "tta.png"))
    return text


def figure(groups, floors, default, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = set()  # each encoder's floor once, however many recipes share the encoder
    for k, recipe in enumerate(sorted({r for r, _ in groups})):
        colour = f"C{k}"
        points = sorted((m, [r["linear"]["test_acc"] for r in recs], [sum(x["seconds"] for x in r["metrics"]) / 60 for r in recs])
                        for (r, m), recs in groups.items() if r == recipe)
        for _, acc, mins in points:
            ax.scatter(mins, acc, color=colour, s=12, alpha=0.6)
        ax.plot([mean_std(p[2])[0] for p in points], [mean_std(p[1])[0] for p in points], "o-", color=colour,
                label=RECIPES.get(recipe, ("", "", recipe))[2])
        encoder = RECIPES.get(recipe, (None, None))[1]
        if floors.get(encoder) and encoder not in drawn:
            drawn.add(encoder)
            m, s = mean_std(floors[encoder])
            if s == s:  # mean ± std over the seeds
                ax.axhspan(m - s, m + s, color=colour, alpha=0.15, label=f"{encoder} untrained (floor)")
            else:  # one seed: a line
                ax.axhline(m, color=colour, ls=":", label=f"{encoder} untrained (floor, n = 1)")
    if default:  # the recipe's own run at its whole command's wall time
        ax.scatter([r["wall_s"] / 60 for r in default], [r["linear"]["test_acc"] for r in default], marker="*",
                   s=60, color="k", zorder=3, label="pretrain.py --recipe quick (whole command)")
    ax.set_xlim(0, 1.1 * ax.get_xlim()[1])  # from no pre-training at all
    ax.set_xlabel("pre-training wall-clock minutes (2-core CPU)")
    ax.set_ylabel("linear top-1 (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(args):
    if not args.table_only:
        measure(args)
    os.makedirs(args.out, exist_ok=True)
    print(table(args.out), end="")


if __name__ == "__main__":
    main(build_parser().parse_args())
