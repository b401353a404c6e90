"""The supervised baseline: the same encoder plus a linear layer, trained from scratch with labels.

    python supervised_baseline.py                                  # ResNet-18 on all 50,000 labels
    python supervised_baseline.py --encoder convnet --label-fraction 0.1 --epochs 30 --device cpu

The comparison point for "self-supervised pre-training + linear evaluation": same encoder, same
labelled images (--label-fraction), same test split, standard supervised augmentation
(random crop with 4-pixel padding, horizontal flip). It trains with the one classifier loop
that linear_eval.py uses (common.fit_classifier), with the encoder unfrozen.
Writes config.json, metrics.jsonl (one line per epoch), checkpoint.pt (resumable) and
supervised.json (test top-1 of the last epoch) into runs/<name>/ or --out-dir.
"""
import os
import time

import cli


def build_parser():
    p = cli.script_parser(__doc__)
    p.add_argument("--encoder", choices=cli.ENCODERS, default="resnet18", help="encoder (default: resnet18)")
    p.add_argument("--label-fraction", type=cli.fraction, default=1.0,
                   help="stratified fraction of the 50,000 labelled training images (default: 1.0)")
    p.add_argument("--wd", type=cli.nonneg_float, default=cli.SUPERVISED_WD,
                   help=f"weight decay (default: {cli.SUPERVISED_WD:g})")
    p.set_defaults(epochs=100, bs=256, lr=cli.SUPERVISED_LR)
    return p


if __name__ == "__main__":
    build_parser().parse_args()  # -h and a mistyped flag answer here, before torch is imported (seconds)

import common  # noqa: E402  (after the parse above)
import dataloader  # noqa: E402
import logs  # noqa: E402
import models  # noqa: E402


def run_dir(args):
    return args.out_dir or os.path.join("runs", f"supervised_{args.encoder}_lf{args.label_fraction:g}"
                                                f"_e{args.epochs}_s{args.seed}")


# What to run on a CPU instead of a ResNet (the convnet trains about 20x faster there).
CPU_COMMAND = "python supervised_baseline.py --encoder convnet --epochs 10 --device cpu"


def cpu_hint(args, device):
    """The line that says a ResNet trains for hours on a CPU and gives the CPU-sized command,
    keeping the user's label fraction, seed and data; None on a GPU or for the convnet."""
    if device.type != "cpu" or args.encoder == "convnet":
        return None
    defaults = vars(build_parser().parse_args([]))
    flags = [f"--{k.replace('_', '-')} {getattr(args, k):g}" if isinstance(getattr(args, k), float)
             else f"--{k.replace('_', '-')} {getattr(args, k)}"
             for k in ("label_fraction", "seed", "data_dir") if getattr(args, k) != defaults[k]]
    return (f"note: {args.encoder} on a CPU trains for hours (the time left follows the first steps); "
            f"sized for a CPU: {' '.join([CPU_COMMAND] + flags)}")


def main(args):
    device = common.resolve_device(args.device)
    common.set_backends(args, device)
    dtype = common.amp_dtype(args.amp, device)
    out = run_dir(args)
    result_path = os.path.join(out, "supervised.json")
    if os.path.exists(result_path):
        print(f"{result_path} exists: {common.read_json(result_path)['test_acc']:.2f}% top-1; nothing to do")
        return common.read_json(result_path)
    common.check_writable(out)  # before any work, not at the first save
    hint = cpu_hint(args, device)
    if hint:
        logs.say(hint)
    checkpoint_path = os.path.join(out, "checkpoint.pt")
    if not os.path.exists(checkpoint_path):
        common.write_config(out, args, "supervised_baseline", device)
        common.truncate_jsonl(os.path.join(out, "metrics.jsonl"), 0)
    common.seed_everything(args.seed)

    x_train, y_train, x_test, y_test = common.load_data(args)
    labelled = dataloader.stratified_subset(y_train, args.label_fraction, args.seed)
    steps = -(-len(labelled) // args.bs)
    logs.say(f"supervised {args.encoder}: {len(labelled):,} labelled images, {args.epochs} epochs of {steps} steps "
             f"| {common.device_name(device)}, {common.precision_name(dtype)} (the time left follows the first steps)")
    model = models.Classifier(models.build_encoder(args.encoder), frozen=False).to(device)
    train_set = common.images_on_device(x_train[labelled], y_train[labelled], device)
    test_set = common.images_on_device(x_test, y_test, device)

    def train(epoch):  # random crop + flip on the device, a new order every epoch
        return common.image_batches(*train_set, args.bs, train=True, seed=args.seed * 100003 + epoch)

    def test():
        return common.image_batches(*test_set, 1024, train=False)
    t0 = time.time()
    history, top1, top5 = common.fit_classifier(
        model, train, test, epochs=args.epochs, steps_per_epoch=steps,
        lr=common.scaled_lr(args.lr, args.bs), wd=args.wd, device=device,
        dtype=dtype, checkpoint_path=checkpoint_path,
        metrics_path=os.path.join(out, "metrics.jsonl"), desc="supervised", tb_dir=os.path.join(out, "tb", "supervised"),
        test_every=common.test_every(len(labelled), len(x_test)),
        recipe={k: getattr(args, k) for k in ("encoder", "label_fraction", "epochs", "bs", "lr", "wd", "seed")})
    confusion = common.confusion_matrix(model, test())
    result = {"kind": "supervised", "encoder": args.encoder, "test_acc": top1, "test_top5": top5,
              "confusion": confusion,
              "train_acc": history[-1]["train_acc"], "label_fraction": args.label_fraction,
              "labelled_images": len(labelled), "epochs": args.epochs, "seconds": time.time() - t0,
              "args": vars(args)}
    common.write_json(result_path, result)
    print(f"supervised {args.encoder} on {len(labelled)} labelled images: test top-1 {top1:.2f}%, "
          f"top-5 {top5:.2f}% (last epoch) -> {result_path}")
    return result


if __name__ == "__main__":
    raise SystemExit(common.run_cli(main, build_parser(), run_dir=run_dir))
