"""Linear evaluation: a linear classifier on the frozen encoder of a pre-training run.

    python linear_eval.py --ckpt runs/<run name>              # frozen f, linear layer on h
    python linear_eval.py --ckpt runs/<run name> --feature z  # probe on z = g(h) instead
    python linear_eval.py --random-init --encoder resnet18    # the floor: an untrained encoder
    python linear_eval.py --ckpt runs/<run name> --finetune --label-fraction 0.1 --out-dir runs/ft10

The projection head is thrown away (Algorithm 1: "return encoder network f, and throw away g"),
every encoder weight is frozen (requires_grad=False) and the encoder stays in eval() mode, so
not even BatchNorm's running statistics move; the script checks afterwards that no weight
changed. As nothing upstream of the linear layer learns and no augmentation is used by default,
the features of the labelled and test images are computed once and the linear layer trains on
them: seconds per epoch. The reported accuracy is the test top-1 after the LAST epoch.

Writes linear_eval.json (linear_eval_z.json for --feature z, finetune.json for --finetune) into
the run directory, or into --out-dir; with --diagnostics also diagnostics.json, measurements of
the representation itself (alignment, uniformity, effective rank of h and z; diagnostics.py),
which an already evaluated run gets without training its classifier again:

    python linear_eval.py --ckpt runs/<run name> --diagnostics
"""
import copy
import os
import time

import cli


def build_parser():
    p = cli.script_parser(__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="an encoder.pt, or a run directory holding one")
    src.add_argument("--random-init", action="store_true", help="evaluate an untrained encoder (needs --encoder)")
    p.add_argument("--encoder", choices=cli.ENCODERS, help="with --random-init: the encoder to build")
    p.add_argument("--feature", choices=("h", "z"), default="h",
                   help="h = encoder output (the standard); z = projection-head output g(h) (default: h)")
    p.add_argument("--label-fraction", type=cli.fraction, default=1.0,
                   help="stratified fraction of the 50,000 labelled training images (default: 1.0)")
    p.add_argument("--wd", type=cli.nonneg_float,
                   help=f"weight decay (default: 0; with --finetune {cli.SUPERVISED_WD:g}, the supervised "
                        "baseline's)")
    p.add_argument("--train-aug", action="store_true",
                   help="train on augmented images (random crop + flip) through the frozen encoder every "
                        "epoch instead of on precomputed features (slower)")
    p.add_argument("--finetune", action="store_true",
                   help="also train the encoder (not linear evaluation; an extra analysis), with the "
                        "supervised baseline's recipe (lr, wd, augmentation), so the two differ only in "
                        "the initialisation")
    p.add_argument("--diagnostics", action="store_true",
                   help="also measure h and z = g(h) on two SimCLR views of a fixed 2,000 test images "
                        "(alignment, uniformity, effective rank, spectrum; diagnostics.json); with "
                        "--save-features also the nearest training images of ten test images")
    p.add_argument("--save-features", action="store_true",
                   help="also write features_test.npz (the standardised features h of a fixed 2,000 test "
                        "images, float16, with their labels) for the report's 2-D picture")
    p.set_defaults(epochs=100, bs=256, lr=None)
    return p


if __name__ == "__main__":
    build_parser().parse_args()  # -h and a mistyped flag answer here, before torch is imported (seconds)

import numpy as np  # noqa: E402  (after the parse above)
import torch  # noqa: E402
from torch import nn  # noqa: E402

import augment  # noqa: E402
import common  # noqa: E402
import dataloader  # noqa: E402
import diagnostics  # noqa: E402
import logs  # noqa: E402
import models  # noqa: E402
from common import UserError  # noqa: E402


def load_encoder(args):
    """Rebuild the encoder (and for --feature z, the head after it) from encoder.pt alone.
    Returns (encoder, source, the checkpoint's contents or None for a random encoder)."""
    if args.random_init:
        if not args.encoder:
            raise UserError("--random-init needs --encoder NAME")
        return models.build_encoder(args.encoder), {"encoder": args.encoder, "method": "random-init"}, None
    # the encoder is built from the checkpoint alone; a contradicting --encoder is a mistake
    path = os.path.join(args.ckpt, "encoder.pt") if os.path.isdir(args.ckpt) else args.ckpt
    if os.path.isdir(args.ckpt) and not os.path.exists(path):
        raise UserError(f"{args.ckpt} has no encoder.pt (is its pre-training finished?)")
    state = common.load_checkpoint(path, "encoder checkpoint")
    if "encoder" not in state or "state_dict" not in state:
        raise UserError(f"{path} is not an encoder.pt written by pretrain.py")
    if args.encoder and args.encoder != state["encoder"]:
        raise UserError(f"{path} holds a {state['encoder']} encoder, not --encoder {args.encoder} "
                        "(with --ckpt the checkpoint decides; drop --encoder)")
    encoder = models.build_encoder(state["encoder"])
    try:
        encoder.load_state_dict(state["state_dict"], strict=True)
    except RuntimeError as e:
        raise UserError(f"{path} does not fit a {state['encoder']}: {common.state_dict_error(e)}") from None
    if args.feature == "z":
        head = trained_head(state)
        encoder = nn.Sequential(encoder, head)
        encoder.feature_dim = head.out_dim
    return encoder, {"encoder": state["encoder"], "method": state.get("method"), "ckpt": path}, state


def standardise(train, test):
    """Scale each feature by the labelled split's mean and std. An affine map of the features, which
    the linear layer could absorb, so still a linear probe; it lets one learning rate fit every
    encoder (a random encoder's features are tiny, a trained ResNet's large)."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    return (train - mean) / std, (test - mean) / std


def run_dir(args):
    """--out-dir, else the run directory of --ckpt, else runs/random_init_<encoder>."""
    if args.out_dir:
        return args.out_dir
    if args.ckpt:
        return args.ckpt if os.path.isdir(args.ckpt) else os.path.dirname(os.path.abspath(args.ckpt))
    return os.path.join("runs", f"random_init_{args.encoder}")


def result_name(args):
    if args.finetune:
        return "finetune.json"
    return "linear_eval_z.json" if args.feature == "z" else "linear_eval.json"


def main(args):
    if args.finetune and args.feature == "z":
        raise UserError("--finetune trains the encoder f; use it with --feature h")
    if args.random_init and args.feature == "z":
        raise UserError("--feature z needs --ckpt: a random encoder comes with no trained projection head")
    # per 256 images; fine-tuning takes the supervised baseline's recipe, linear evaluation lr 0.1, no wd
    if args.lr is None:
        args.lr = common.SUPERVISED_LR if args.finetune else 0.1
    if args.wd is None:
        args.wd = common.SUPERVISED_WD if args.finetune else 0.0
    out = run_dir(args)
    result_path = os.path.join(out, result_name(args))
    diagnostics_path = os.path.join(out, "diagnostics.json")
    measure_now = args.diagnostics and not args.finetune and not os.path.exists(diagnostics_path)
    if measure_now or not os.path.exists(result_path):
        common.check_writable(out)  # before the features are computed, not at the first save
    device = common.resolve_device(args.device)
    common.set_backends(args, device)
    dtype = common.amp_dtype(args.amp, device)  # for the encoder; the linear layer on fixed features stays float32
    common.seed_everything(args.seed)  # before any model is built: the random-init encoder too
    encoder, source, state = load_encoder(args)
    source["encoder_sha256"] = common.fingerprint(encoder.state_dict())
    if os.path.exists(result_path):
        print(f"{result_path} exists: {common.read_json(result_path)['test_acc']:.2f}% top-1; "
              + ("measuring the representation only" if measure_now else "nothing to do"))
        if measure_now:
            x_train, y_train, x_test, y_test = common.load_data(args)
            measure(encoder_f(encoder).to(device), trained_head(state), x_train, y_train, x_test, y_test, args, device,
                    dtype, out)
        return common.read_json(result_path)
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(os.path.join(out, "config.json")):
        common.write_config(out, args, "linear_eval", device)

    x_train, y_train, x_test, y_test = common.load_data(args)
    labelled = dataloader.stratified_subset(y_train, args.label_fraction, args.seed)
    x_lab, y_lab = x_train[labelled], torch.as_tensor(y_train[labelled])
    y_test_t = torch.as_tensor(y_test)
    kind = "finetune" if args.finetune else ("random-init" if args.random_init else "linear")
    lr, wd = common.scaled_lr(args.lr, args.bs), args.wd
    steps = -(-len(labelled) // args.bs)
    encoder = encoder.to(device)
    before = copy.deepcopy(encoder.state_dict())
    t0 = time.time()

    if args.finetune or args.train_aug:
        model = models.Classifier(encoder, frozen=not args.finetune).to(device)
        train_set = common.images_on_device(x_lab, y_lab, device)
        test_set = common.images_on_device(x_test, y_test_t, device)

        def train(epoch):
            return common.image_batches(*train_set, args.bs, train=True, seed=args.seed * 100003 + epoch)

        def test():
            return common.image_batches(*test_set, 1024, train=False)
        history, top1, top5 = common.fit_classifier(
            model, train, test, epochs=args.epochs, steps_per_epoch=steps, lr=lr, wd=wd, device=device,
            dtype=dtype, checkpoint_path=os.path.join(out, f"checkpoint_{kind}.pt") if args.finetune else None, desc=kind,
            tb_dir=os.path.join(out, "tb", result_name(args)[:-len(".json")]),
            test_every=common.test_every(len(x_lab), len(x_test)),
            recipe={"ckpt": source.get("ckpt"), **{k: getattr(args, k) for k in
                                                   ("label_fraction", "epochs", "bs", "lr", "wd", "seed")}})
    else:
        encoder.requires_grad_(False)
        logs.say(f"features of {len(x_lab):,} labelled and {len(x_test):,} test images through the frozen "
                 f"{source['encoder']} (once)")
        t_feat = time.time()
        f_lab = common.extract_features(encoder, x_lab, device, dtype=dtype,  # (N_lab, D), computed once
                                        timed=logs.say_time_left("features", len(x_lab) + len(x_test)))
        f_test = common.extract_features(encoder, x_test, device, dtype=dtype)  # (10000, D)
        logs.say(f"features computed in {time.time() - t_feat:.0f} s")
        f_lab, f_test = standardise(f_lab, f_test)
        f_lab, f_test = f_lab.to(device), f_test.to(device)
        fc = nn.Linear(f_lab.shape[1], 10).to(device)

        def test():
            return common.tensor_batches(f_test, y_test_t.to(device), 1024, False)
        history, top1, top5 = common.fit_classifier(
            fc, lambda epoch: common.tensor_batches(f_lab, y_lab.to(device), args.bs, True, args.seed * 100003 + epoch),
            test, epochs=args.epochs, steps_per_epoch=steps, lr=lr, wd=wd, device=device, desc=kind,
            tb_dir=os.path.join(out, "tb", result_name(args)[:-len(".json")]))
        model = fc
        if args.save_features:  # small enough to commit: 2,000 test images, the same for every run
            keep = dataloader.stratified_subset(y_test, 0.2, seed=0)
            np.savez_compressed(os.path.join(out, "features_test.npz"), index=keep, labels=y_test[keep],
                                feats=f_test.cpu()[keep].half().numpy())
    if not args.finetune:
        sanity_check(encoder.state_dict(), before)
    confusion = common.confusion_matrix(model, test())

    result = {"kind": kind, "feature": args.feature, "test_acc": top1, "test_top5": top5, "confusion": confusion,
              "train_acc": history[-1]["train_acc"], "label_fraction": args.label_fraction,
              "labelled_images": len(labelled), "epochs": args.epochs,
              "seconds": time.time() - t0, **source, "history": history, "args": vars(args)}
    common.write_json(result_path, result)
    print(f"{kind} evaluation ({args.feature}) of {source.get('ckpt', source['encoder'])}: "
          f"test top-1 {top1:.2f}%, top-5 {top5:.2f}% (last epoch) -> {result_path}")
    if measure_now:
        measure(encoder_f(encoder), trained_head(state), x_train, y_train, x_test, y_test, args, device, dtype, out)
    return result


def encoder_f(encoder):
    """f alone: with --feature z, load_encoder returns nn.Sequential(f, g)."""
    return encoder[0] if isinstance(encoder, nn.Sequential) else encoder


def trained_head(state):
    """The trained projection head g from an encoder.pt's contents (None for a random encoder,
    which has no checkpoint); g(h) = h for head none."""
    if state is None:
        return None
    head = models.build_head(state["head"], state["feature_dim"], state["hidden_dim"], state["proj_dim"])
    head.load_state_dict(state["head_state_dict"], strict=True)
    return head


DIAGNOSTIC_SHARE = 0.2  # of the test split: the same 2,000 images (200 per class) as features_test.npz


@torch.no_grad()
def embed(net, x, device, dtype, bs=500):
    """net(x) in eval mode for float images x (N, 3, 32, 32) already normalised, float32 on the CPU."""
    net.eval()
    out = []
    for i in range(0, len(x), bs):
        with common.autocast(device, dtype):
            out.append(net(x[i:i + bs].to(device)).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def measure(encoder, head, x_train, y_train, x_test, y_test, args, device, dtype, out):
    """diagnostics.json: the representation measured on a fixed 2,000 test images, each made into
    two views by the SimCLR augmentation (its own seeded generator: the measurement neither uses
    nor moves the run's random state). For h and, when the run has a head, z = g(h):
    alignment and uniformity (Wang & Isola 2020), effective rank (RankMe), mean cosine of
    positives and negatives, and the normalised singular values of the un-augmented features.
    With --save-features also retrieval.npz: ten test images (one per class) and their eight
    nearest training images (cosine on h, among the kNN monitor's 5,000-image bank)."""
    t0 = time.time()
    keep = dataloader.stratified_subset(y_test, DIAGNOSTIC_SHARE, seed=0)
    x = dataloader.to_tensor_batch(x_test[keep]).to(device)  # (2000, 3, 32, 32) uint8
    aug = augment.BatchedAugment("simclr").to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(args.seed)
        v1, v2 = aug(x), aug(x)
    clean = common.normalize_batch(x)
    h1, h2, h = (embed(encoder, v, device, dtype) for v in (v1, v2, clean))
    record = {"images": len(keep), "views": "simclr", "seed": args.seed, "encoder_sha256": common.fingerprint(encoder.state_dict()),
              "h": diagnostics.summarise(h1, h2), "spectrum_h": diagnostics.singular_values(h).tolist()}
    if head is not None and not isinstance(head, models.NoHead):
        head = head.to(device).eval()
        z1, z2, z = (embed(head, f, device, None) for f in (h1, h2, h))  # g on float32 h
        record.update(z=diagnostics.summarise(z1, z2), spectrum_z=diagnostics.singular_values(z).tolist())
    elif head is not None:
        record["z_is_h"] = True  # head none: the loss was applied to h itself
    common.write_json(os.path.join(out, "diagnostics.json"), record)
    if args.save_features:
        bank = common.knn_bank(y_train)
        queries = np.array([np.flatnonzero(y_test[keep] == c)[0] for c in range(10)])
        f_bank = torch.nn.functional.normalize(common.extract_features(encoder, x_train[bank], device, dtype=dtype), dim=1)
        f_query = torch.nn.functional.normalize(h[queries], dim=1)
        sim, nearest = (f_query @ f_bank.T).topk(8, dim=1)  # (10, 8)
        np.savez_compressed(os.path.join(out, "retrieval.npz"), query_images=x_test[keep][queries],
                            query_labels=y_test[keep][queries], neighbour_images=x_train[bank][nearest.numpy()],
                            neighbour_labels=y_train[bank][nearest.numpy()], similarity=sim.numpy())
    logs.say(f"diagnostics of h{' and z' if 'z' in record else ''} in {time.time() - t0:.0f} s -> "
             f"{os.path.join(out, 'diagnostics.json')}: effective rank of h {record['h']['effective_rank']:.1f}, "
             f"alignment {record['h']['alignment']:.3f}, uniformity {record['h']['uniformity']:.3f}")


def sanity_check(after, before):
    """MoCo's sanity check: a frozen encoder must come out of linear evaluation bit for bit unchanged
    (weights and BatchNorm statistics alike)."""
    for k in before:
        if not torch.equal(before[k], after[k]):
            raise RuntimeError(f"encoder tensor {k} changed during linear evaluation: the encoder was not frozen")


if __name__ == "__main__":
    raise SystemExit(common.run_cli(main, build_parser(), run_dir=run_dir))
