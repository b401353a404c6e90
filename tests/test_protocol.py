"""The details of the protocol that move the numbers when they are wrong: seeding, the kNN
monitor's bank, MoCo's own-image negatives, the warm-up and the per-step schedules, weight
decay, the two views, the standardisation of linear evaluation, and fine-tuning against the
supervised baseline. Each test fails on the bug it names.

    python -m pytest -q tests/test_protocol.py
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import common
import dataloader
import linear_eval
import loss as losses
import methods
import models
import pretrain
import supervised_baseline
from conftest import ROOT, run_main
from test_run_all import _work_copy
from test_scripts import eval_argv, pretrain_argv, read_metrics, supervised_argv


# ---------------------------------------------------------------------------- seeding

@pytest.mark.slow  # three processes
def test_random_init_encoder_is_seeded_across_processes(tiny_data, tmp_path):
    """Same flags in two fresh processes: the same random encoder (weights' hash) and accuracy.
    torch seeds each new process differently, so this fails if the encoder is built before
    linear_eval.py seeds; a different --seed gives another encoder."""
    def run(name, seed):
        out = str(tmp_path / name)
        argv = [sys.executable, "linear_eval.py", "--random-init", "--encoder", "convnet",
                *eval_argv(tiny_data[0]), "--seed", str(seed), "--out-dir", out]
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, timeout=300)
        return common.read_json(os.path.join(out, "linear_eval.json"))
    a, b, c = run("a", 3), run("b", 3), run("c", 4)
    assert a["encoder_sha256"] == b["encoder_sha256"] and a["test_acc"] == b["test_acc"]
    assert [{**r, "seconds": 0} for r in a["history"]] == [{**r, "seconds": 0} for r in b["history"]]
    assert c["encoder_sha256"] != a["encoder_sha256"]


# ---------------------------------------------------------------------------- kNN monitor

def test_knn_bank_is_fixed_whatever_the_fraction_and_seed(tiny_data, tmp_path, monkeypatch):
    """kNN accuracy must move with the features only: the same memory bank for every run."""
    banks = []

    def knn(train_feats, train_labels, test_feats, test_labels, **kw):
        banks.append((len(train_feats), list(np.asarray(train_labels))))
        return 0.0
    monkeypatch.setattr(common, "knn_accuracy", knn)
    for i, (fraction, seed) in enumerate([("1", "0"), ("0.5", "0"), ("1", "1")]):
        argv = pretrain_argv(tiny_data[0], str(tmp_path / f"r{i}"), "simclr", 1, "--seed", seed)
        argv[argv.index("--fraction") + 1] = fraction
        run_main(pretrain, argv)
    y_train = tiny_data[1][1]
    expected = common.knn_bank(y_train)
    assert banks == [(len(expected), list(y_train[expected]))] * 3
    assert list(expected) == list(dataloader.stratified_subset(y_train, 0.1, seed=0))


# ---------------------------------------------------------------------------- MoCo

def test_moco_never_uses_a_stale_key_of_the_querys_own_image(monkeypatch):
    """The same 8 images twice: in the second step every query meets the keys its own image left
    in the queue in the first step; those must be masked (-inf), all other entries kept."""
    torch.manual_seed(0)
    m = methods.build_method("moco", "convnet", "bn", proj_dim=16, queue_size=32)
    seen = []
    real = losses.infonce_with_queue

    def spy(q, k, queue, tau=0.2, exclude=None):
        value, logits = real(q, k, queue, tau, exclude)
        seen.append(logits.detach())
        return value, logits
    monkeypatch.setattr(losses, "infonce_with_queue", spy)
    x1, x2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    idx = torch.arange(100, 108)
    m(x1, x2, idx)
    queue_idx = m.queue_idx.clone()  # what the second step's negatives came from
    assert (queue_idx[:16] == torch.cat([idx, idx])).all()
    seen.clear()
    m(x1, x2, idx)
    own = idx[:, None] == queue_idx[None, :]  # (8, 32)
    assert own.sum() == 16  # two stale keys per image
    for logits in seen:  # both directions of the symmetrised loss
        negatives = logits[:, 1:]
        assert torch.isinf(negatives[own]).all() and torch.isfinite(negatives[~own]).all()
        assert torch.isfinite(logits[:, 0]).all()


def test_moco_without_indices_masks_nothing():
    torch.manual_seed(0)
    m = methods.build_method("moco", "convnet", "bn", proj_dim=16, queue_size=32)
    x1, x2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    m(x1, x2)
    assert (m.queue_idx[:16] == -1).all()
    value, _ = m(x1, x2)
    assert torch.isfinite(value)


def test_pretrain_hands_moco_the_image_indices(tiny_data, tmp_path, monkeypatch):
    """pretrain.py passes each batch's image indices (positions in the pre-training subset)."""
    got = []
    real = methods.MoCo.forward

    def forward(self, x1, x2, idx=None):
        got.append(None if idx is None else idx.clone())
        return real(self, x1, x2, idx)
    monkeypatch.setattr(methods.MoCo, "forward", forward)
    run_main(pretrain, pretrain_argv(tiny_data[0], str(tmp_path / "m"), "moco", 1))
    assert got and all(i is not None for i in got)
    seen = torch.cat(got)
    assert len(set(seen.tolist())) == len(seen) == 80 // 16 * 16  # one epoch: each image once


# ---------------------------------------------------------------------------- schedules

def test_warmup_is_counted_in_steps(tiny_data, tmp_path):
    """--warmup-epochs 2 with 5 steps per epoch is 10 warm-up steps: the lr logged after epoch 1
    (step 5) is half the peak. A warm-up of 2 *steps* would log nearly the peak there."""
    out = str(tmp_path / "w")
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 20, "--warmup-epochs", "2", "--knn-every", "0"))
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    peak = common.scaled_lr(0.12, 16)
    assert rows[0]["lr"] == pytest.approx(peak * 5 / 10)
    assert rows[1]["lr"] == pytest.approx(peak)  # the last warm-up step
    schedule = common.read_json(os.path.join(out, "config.json"))["schedule"]
    assert schedule == {"images": 80, "steps_per_epoch": 5, "total_steps": 100, "warmup_steps": 10}


def test_runs_at_equal_steps_get_equal_warmup_and_steps(tiny_data, tmp_path):
    """--steps N --warmup-steps W: every batch size trains exactly N steps with the same
    warm-up, and the lr follows the same function of the step."""
    for bs in ("8", "16"):
        out = str(tmp_path / f"bs{bs}")
        argv = pretrain_argv(tiny_data[0], out, "simclr", 1, "--steps", "12", "--warmup-steps", "4", "--knn-every", "0")
        argv[argv.index("--bs") + 1] = bs
        run_main(pretrain, argv)
        config = common.read_json(os.path.join(out, "config.json"))
        assert config["schedule"]["total_steps"] == 12 and config["schedule"]["warmup_steps"] == 4
        rows = read_metrics(os.path.join(out, "metrics.jsonl"))
        assert rows[-1]["step"] == 12
        assert config["args"]["epochs"] == len(rows) == -(-12 // (80 // int(bs)))
        peak = common.scaled_lr(0.12, int(bs))
        for r in rows:
            assert r["lr"] == pytest.approx(common.lr_at(r["step"] - 1, 12, peak, 4))


def test_steps_run_is_named_by_steps(tiny_data):
    args = pretrain.build_parser().parse_args(["--steps", "190", "--bs", "64"])
    pretrain.check_args(args)
    assert "_bs64_st190_" in args.out_dir and "_e500" not in args.out_dir


def test_classifier_lr_follows_the_cosine_per_step(tiny_data, tmp_path):
    """fit_classifier changes the lr every step: the lr logged after epoch e is the schedule's
    value at the epoch's last step, not at its first (a schedule stepped once per epoch)."""
    out = str(tmp_path / "lin")
    result = run_main(linear_eval, ["--random-init", "--encoder", "convnet", *eval_argv(tiny_data[0]),
                                    "--out-dir", out, "--epochs", "3"])
    steps = 80 // 16
    peak = common.scaled_lr(0.1, 16)
    for e, record in enumerate(result["history"]):
        assert record["lr"] == pytest.approx(common.lr_at((e + 1) * steps - 1, 3 * steps, peak))
    assert result["history"][0]["lr"] < peak * 0.9  # moved within the first epoch already


# ---------------------------------------------------------------------------- weight decay

@pytest.mark.parametrize("name", methods.METHODS)
def test_no_weight_decay_on_batchnorm_and_biases(name):
    """The optimiser of every model: weight decay on conv and linear weights only."""
    m = methods.build_method(name, "convnet", "bn", proj_dim=16, queue_size=32)
    optimizer = common.sgd(m.parameters(), 0.1, 5e-4)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    names = {id(p): n for n, p in m.named_parameters()}
    bn = {id(p) for mod in m.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)
          for p in mod.parameters()}
    assert bn and set(decay) == {id(p) for p in m.parameters() if p.requires_grad}
    for pid, wd in decay.items():
        if pid in bn or names[pid].endswith("bias"):
            assert wd == 0.0, names[pid]
        else:
            assert wd == 5e-4, names[pid]


# ---------------------------------------------------------------------------- the two views

@pytest.mark.parametrize("backend", ["batched", "torchvision"])
def test_two_views_of_an_image_are_cropped_independently(backend):
    """With crop alone, the two views of an image differ almost always; the same crop drawn
    for both views (or one view used twice) makes them equal."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    args = pretrain.build_parser().parse_args(["--bs", "32", "--aug", "crop", "--aug-backend", backend,
                                               "--workers", "0"])
    views = common.TwoViews(images, args, torch.device("cpu"))
    pairs = [(x1, x2, idx) for x1, x2, idx in views.epoch(0)]
    assert len(pairs) == 2
    for x1, x2, idx in pairs:
        assert x1.shape == x2.shape == (32, 3, 32, 32)
        same = (x1 - x2).flatten(1).abs().amax(1) < 1e-6
        assert same.float().mean() < 0.1
    # the indices say which image each row came from: all 64, each once per epoch
    assert sorted(torch.cat([p[2] for p in pairs]).tolist()) == list(range(64))


def test_two_views_rows_come_from_the_indexed_image():
    """Without augmentation both views are the indexed image itself, normalised."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(32, 32, 32, 3), dtype=np.uint8)
    args = pretrain.build_parser().parse_args(["--bs", "16", "--aug", "none"])
    views = common.TwoViews(images, args, torch.device("cpu"))
    for x1, x2, idx in views.epoch(3):
        expected = common.normalize_batch(dataloader.to_tensor_batch(images[idx.numpy()]))
        torch.testing.assert_close(x1, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(x2, expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- linear evaluation

def test_standardise_uses_the_labelled_split_statistics_only():
    """Test features are scaled with the labelled split's mean and std: the test split's own
    statistics must not leak into the classifier's input."""
    g = torch.Generator().manual_seed(0)
    train = torch.randn(500, 4, generator=g) * 3 + 1
    test = torch.randn(300, 4, generator=g) * 5 - 2
    a, b = linear_eval.standardise(train, test)
    mean, std = train.mean(0), train.std(0)
    torch.testing.assert_close(a.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(b, (test - mean) / (std + 1e-6))
    assert (b.mean(0) < -0.5).all()  # the test split keeps its shift relative to the labelled one


def test_linear_eval_standardises_with_the_labelled_features(tiny_data, tmp_path, monkeypatch):
    """main() hands standardise the labelled features first and the test features second."""
    calls = []
    real = linear_eval.standardise

    def spy(train, test):
        calls.append((len(train), len(test)))
        return real(train, test)
    monkeypatch.setattr(linear_eval, "standardise", spy)
    run_main(linear_eval, ["--random-init", "--encoder", "convnet", *eval_argv(tiny_data[0]),
                           "--label-fraction", "0.5", "--out-dir", str(tmp_path / "s")])
    assert calls == [(40, 40)]  # 50% of 80 labelled images first; the 40 test images second


# ---------------------------------------------------------------------------- label study

def test_finetuning_differs_from_the_supervised_baseline_only_in_initialisation(tiny_data, tmp_path):
    """Fine-tuning an encoder.pt that holds exactly the weights the supervised baseline starts
    from must reproduce the supervised run bit for bit: same lr, weight decay, epochs,
    augmentation, data order and classifier initialisation."""
    seed = 5
    sup = run_main(supervised_baseline, supervised_argv(tiny_data[0], str(tmp_path / "sup"), epochs=2)
                   + ["--seed", str(seed)])
    common.seed_everything(seed)
    f = models.build_encoder("convnet")  # what supervised_baseline.py builds first after seeding
    ckpt = str(tmp_path / "encoder.pt")
    torch.save({"encoder": "convnet", "feature_dim": f.feature_dim, "state_dict": f.state_dict(),
                "head": "bn", "proj_dim": 16, "hidden_dim": None, "head_state_dict": {}}, ckpt)
    ft = run_main(linear_eval, ["--ckpt", ckpt, "--finetune", *eval_argv(tiny_data[0]), "--seed", str(seed),
                                "--out-dir", str(tmp_path / "ft")])
    assert ft["args"]["lr"] == sup["args"]["lr"] and ft["args"]["wd"] == sup["args"]["wd"]

    def without_time(history):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    sup_history = read_metrics(os.path.join(tmp_path / "sup", "metrics.jsonl"))
    assert without_time(ft["history"]) == without_time(sup_history)
    assert ft["test_acc"] == sup["test_acc"] and ft["test_top5"] == sup["test_top5"]


def test_run_all_trains_finetuning_as_long_as_the_supervised_baseline(tmp_path):
    work = _work_copy(tmp_path)  # no records: the dry run lists every command of the study
    out = subprocess.run(["bash", "run_all.sh", "--quick", "--dry-run", "--only", "label", "--no-estimate"], cwd=work,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for lf in ("0.01", "0.1", "1.0"):
        sup = [l for l in lines if "supervised_baseline.py" in l and f"--label-fraction {lf} " in l]
        ft = [l for l in lines if "--finetune" in l and f"--label-fraction {lf} " in l]
        epochs = lambda l: l.split("--epochs ")[1].split()[0]  # noqa: E731
        assert len(sup) == len(ft) == 1 and epochs(sup[0]) == epochs(ft[0])
        assert "--lr" not in sup[0] + ft[0] and "--wd" not in sup[0] + ft[0]  # both on the shared defaults


# ---------------------------------------------------------------------------- what the result records

def test_confusion_matrix_agrees_with_the_reported_accuracy(tiny_data, tmp_path):
    """linear_eval.json and supervised.json carry the test confusion matrix (true x predicted);
    its diagonal is the reported top-1."""
    lin = run_main(linear_eval, ["--random-init", "--encoder", "convnet", *eval_argv(tiny_data[0]),
                                 "--out-dir", str(tmp_path / "lin")])
    sup = run_main(supervised_baseline, supervised_argv(tiny_data[0], str(tmp_path / "sup"), epochs=1))
    for result in (lin, sup):
        c = np.array(result["confusion"])
        assert c.shape == (10, 10) and c.sum() == 40 and (c.sum(1) == 4).all()  # 4 test images per class
        assert 100.0 * np.trace(c) / c.sum() == pytest.approx(result["test_acc"])


def test_diagnostics_of_a_run_and_of_a_random_encoder(run_diag):
    """--diagnostics writes diagnostics.json: h and z measured on the same views, z only where the
    run has a head; the values lie in their ranges; the classifier's result is untouched."""
    d, d_random = run_diag
    for rec in (d, d_random):
        h = rec["h"]
        assert 0 <= h["alignment"] <= 4 and -4 <= h["uniformity"] <= 0
        assert 1 <= h["effective_rank"] <= h["dim"] and -1 <= h["neg_cos"] <= h["pos_cos"] <= 1
        assert rec["images"] == 10  # 20% of the fixture's 40 test images
        assert len(rec["spectrum_h"]) == min(10, h["dim"]) and sum(rec["spectrum_h"]) == pytest.approx(1)
    assert d["z"]["dim"] == 32 and len(d["spectrum_z"]) == 10  # pretrain_argv's --proj-dim 32
    assert "z" not in d_random and d["encoder_sha256"] != d_random["encoder_sha256"]


@pytest.fixture(scope="module")
def run_diag(tiny_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("diag")
    out = str(base / "run")
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 1))
    first = run_main(linear_eval, ["--ckpt", out, *eval_argv(tiny_data[0])])
    # asked later, on an evaluated run: only the measurement runs, the result stays as it was
    again = run_main(linear_eval, ["--ckpt", out, *eval_argv(tiny_data[0]), "--diagnostics", "--save-features"])
    assert again == first
    d = common.read_json(os.path.join(out, "diagnostics.json"))
    rnd = str(base / "random")
    run_main(linear_eval, ["--random-init", "--encoder", "convnet", *eval_argv(tiny_data[0]), "--diagnostics",
                           "--out-dir", rnd])
    return d, common.read_json(os.path.join(rnd, "diagnostics.json"))


def test_diagnostics_do_not_depend_on_when_they_are_measured(tiny_data, run_diag, tmp_path):
    """Measured together with the evaluation or afterwards: the same numbers (own seeded views)."""
    out = str(tmp_path / "run")
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 1))
    run_main(linear_eval, ["--ckpt", out, *eval_argv(tiny_data[0]), "--diagnostics"])
    together = common.read_json(os.path.join(out, "diagnostics.json"))
    assert together["h"] == run_diag[0]["h"] and together["z"] == run_diag[0]["z"]


def test_retrieval_record(run_diag, tiny_data, tmp_path):
    """--diagnostics --save-features: ten test images, one per class, with their eight nearest
    training images from the kNN bank, most similar first."""
    import glob
    path = [p for p in glob.glob(str(tmp_path.parent.parent / "**" / "retrieval.npz"), recursive=True)]
    assert path, "retrieval.npz was not written"
    r = np.load(path[0])
    assert r["query_images"].shape == (10, 32, 32, 3) and list(r["query_labels"]) == list(range(10))
    assert r["neighbour_images"].shape == (10, 8, 32, 32, 3) and r["neighbour_labels"].shape == (10, 8)
    assert (np.diff(r["similarity"], axis=1) <= 1e-6).all()


# ---------------------------------------------------------------------------- TensorBoard

def _events(log_dir):
    """{tag: [(step, value), ...]} read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(log_dir)
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_events_equal_the_metrics(tiny_data, tmp_path):
    """Pre-training and the supervised baseline log the numbers of metrics.jsonl as TensorBoard
    scalars (float32 there), one point per epoch at the step (or epoch) it was reached."""
    pytest.importorskip("tensorboard")
    out = str(tmp_path / "pre")
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 2))
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    events = _events(os.path.join(out, "tb", "pretrain"))
    for key in ("loss", "lr", "pos_top1", "knn_top1", "img_per_s"):
        assert [s for s, _ in events[f"pretrain/{key}"]] == [r["step"] for r in rows]
        assert [v for _, v in events[f"pretrain/{key}"]] == pytest.approx([r[key] for r in rows], rel=1e-6)
    sup = str(tmp_path / "sup")
    result = run_main(supervised_baseline, supervised_argv(tiny_data[0], sup, epochs=2))
    rows = read_metrics(os.path.join(sup, "metrics.jsonl"))
    events = _events(os.path.join(sup, "tb", "supervised"))
    assert [v for _, v in events["supervised/train_acc"]] == pytest.approx([r["train_acc"] for r in rows], rel=1e-6)
    # the test accuracy is watched every epoch; the result is the last epoch's
    assert [s for s, _ in events["supervised/test_top1"]] == [1, 2]
    assert [v for _, v in events["supervised/test_top1"]] == pytest.approx([r["test_top1"] for r in rows], rel=1e-6)
    assert rows[-1]["test_top1"] == result["test_acc"]


def test_tensorboard_after_resume_hides_the_interrupted_epochs(tiny_data, tmp_path, monkeypatch):
    """A run killed after logging epoch 3 but before its checkpoint was saved resumes at epoch 3:
    metrics.jsonl drops the orphan line, TensorBoard hides the orphan point; each epoch once."""
    pytest.importorskip("tensorboard")
    from test_scripts import Interrupted
    out = str(tmp_path / "r")
    real, saves = common.save_atomic, []

    def save_atomic(obj, path):
        saves.append(path)
        if len(saves) == 3:  # the third epoch's checkpoint
            raise Interrupted
        real(obj, path)
    with monkeypatch.context() as mp:
        mp.setattr(common, "save_atomic", save_atomic)
        with pytest.raises(Interrupted):
            run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 3))
    assert len(read_metrics(os.path.join(out, "metrics.jsonl"))) == 3  # the orphan epoch-3 line
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 3))
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    loss = _events(os.path.join(out, "tb", "pretrain"))["pretrain/loss"]
    assert [s for s, _ in loss] == [r["step"] for r in rows] == [5, 10, 15]
    assert [v for _, v in loss] == pytest.approx([r["loss"] for r in rows], rel=1e-6)


def test_test_every_trains_as_many_images_as_the_test_set_between_two_looks():
    assert common.test_every(50000, 10000) == 1 and common.test_every(5000, 10000) == 2
    assert common.test_every(500, 10000) == 20 and common.test_every(0, 10000) == 10000


def test_watching_the_test_set_less_often_changes_nothing_else(tiny_data, tmp_path, monkeypatch):
    """20 labelled images, 40 test images: the test accuracy is read every 2 epochs and at the last;
    the training, its losses and the result equal those of a run that reads it every epoch."""
    argv = supervised_argv(tiny_data[0], str(tmp_path / "sparse"), epochs=5) + ["--label-fraction", "0.25"]
    sparse = run_main(supervised_baseline, argv)
    rows = read_metrics(str(tmp_path / "sparse" / "metrics.jsonl"))
    assert [r["epoch"] for r in rows if "test_top1" in r] == [2, 4, 5]
    monkeypatch.setattr(common, "test_every", lambda n_train, n_test: 1)
    argv = supervised_argv(tiny_data[0], str(tmp_path / "dense"), epochs=5) + ["--label-fraction", "0.25"]
    dense = run_main(supervised_baseline, argv)
    dense_rows = read_metrics(str(tmp_path / "dense" / "metrics.jsonl"))
    assert all("test_top1" in r for r in dense_rows)
    assert [r["loss"] for r in rows] == [r["loss"] for r in dense_rows]
    assert [dense_rows[i - 1]["test_top1"] for i in (2, 4, 5)] == [r["test_top1"] for r in rows if "test_top1" in r]
    assert sparse["test_acc"] == dense["test_acc"] and sparse["test_top5"] == dense["test_top5"]
