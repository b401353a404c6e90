"""End-to-end tests of pretrain.py, linear_eval.py and supervised_baseline.py: each main() on the
tiny CIFAR-10 folder of conftest (80 training, 40 test images), the files of a run directory,
resuming an interrupted run to the same result as an uninterrupted one, and a finished run left
alone.

    python -m pytest -q tests/test_scripts.py
"""
import json
import os

import numpy as np
import pytest
import torch

import common
import linear_eval
import methods
import models
import pretrain
import supervised_baseline
from conftest import run_main

STEPS = 80 // 16  # tiny_data has 80 training images; --fraction 1 --bs 16


class Interrupted(Exception):
    """Stands in for Ctrl-C / a killed job in the middle of a run."""


def pretrain_argv(data, out, method="simclr", epochs=2, *extra):
    argv = ["--data-dir", data, "--no-download", "--device", "cpu", "--workers", "0",
            "--encoder", "convnet", "--method", method, "--fraction", "1", "--bs", "16",
            "--epochs", str(epochs), "--knn-every", "1", "--proj-dim", "32", "--out-dir", out]
    if method == "moco":
        argv += ["--queue-size", "64"]
    return argv + list(extra)


def eval_argv(data, *extra):
    return ["--data-dir", data, "--no-download", "--device", "cpu", "--workers", "0",
            "--epochs", "2", "--bs", "16"] + list(extra)


def read_metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def mtime(path):
    return os.stat(path).st_mtime_ns


@pytest.fixture(scope="module")
def run_dir(tiny_data, tmp_path_factory):
    """run_dir(method): a finished 2-epoch pre-training run of `method`, made on first use."""
    made = {}

    def get(method):
        if method not in made:
            out = str(tmp_path_factory.mktemp(f"run_{method}"))
            assert run_main(pretrain, pretrain_argv(tiny_data[0], out, method)) == out
            made[method] = out
        return made[method]
    return get


@pytest.fixture(params=methods.METHODS)
def pretrained(request, run_dir):
    return request.param, run_dir(request.param)


# ---------------------------------------------------------------------------- pretrain

def test_pretrain_run_directory(pretrained):
    method, out = pretrained
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "encoder.pt"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]

    config = common.read_json(os.path.join(out, "config.json"))
    assert config["script"] == "pretrain" and config["torch"] == torch.__version__
    assert config["args"]["method"] == method and config["args"]["epochs"] == 2
    assert config["args"]["tau"] == methods.DEFAULT_TAU[method]  # resolved, not null
    assert "command" in config

    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["step"] for r in rows] == [STEPS, 2 * STEPS]
    for r in rows:
        assert {"epoch", "step", "loss", "lr", "seconds", "img_per_s", "knn_top1"} <= set(r)
        assert r["loss"] == r["loss"] and abs(r["loss"]) < 1e6  # finite
        assert r["lr"] >= 0 and r["seconds"] > 0 and r["img_per_s"] > 0
        assert 0 <= r["knn_top1"] <= 100
        assert ("pos_top1" in r) == (method != "byol")
    assert rows[-1]["lr"] < rows[0]["lr"]  # cosine decay to ~0 at the end

    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 2
    assert {"model", "optimizer", "scaler", "rng"} <= set(ckpt)


def test_encoder_pt_is_plain_and_rebuilds_strictly(pretrained):
    method, out = pretrained
    state = torch.load(os.path.join(out, "encoder.pt"), map_location="cpu", weights_only=False)
    assert state["encoder"] == "convnet" and state["method"] == method and state["feature_dim"] == 256
    keys = list(state["state_dict"]) + list(state["head_state_dict"])
    assert keys and not [k for k in keys if "_orig_mod." in k or k.startswith("module.")]
    encoder = models.build_encoder(state["encoder"])
    encoder.load_state_dict(state["state_dict"], strict=True)
    head = models.build_head(state["head"], encoder.feature_dim, state["hidden_dim"], state["proj_dim"])
    head.load_state_dict(state["head_state_dict"], strict=True)
    # the same weights as the online encoder in the last checkpoint (not the key/target network)
    model = torch.load(os.path.join(out, "checkpoint.pt"), map_location="cpu", weights_only=False)["model"]
    for k, v in state["state_dict"].items():
        assert torch.equal(v, model["encoder." + k]), k
    # and training moved them away from a fresh initialisation
    torch.manual_seed(0)
    fresh = models.build_encoder("convnet").state_dict()
    assert not torch.equal(fresh["features.0.weight"], state["state_dict"]["features.0.weight"])


def test_finished_pretrain_is_not_trained_again(pretrained, tiny_data, monkeypatch):
    method, out = pretrained  # made before load_data is replaced below
    enc, met = os.path.join(out, "encoder.pt"), os.path.join(out, "metrics.jsonl")
    before = (mtime(enc), open(met).read(), mtime(os.path.join(out, "checkpoint.pt")))
    monkeypatch.setattr(common, "load_data", lambda args: pytest.fail("a finished run loaded data"))
    assert run_main(pretrain, pretrain_argv(tiny_data[0], out, method)) == out
    assert (mtime(enc), open(met).read(), mtime(os.path.join(out, "checkpoint.pt"))) == before


def test_default_out_dir_names_the_recipe(tiny_data):
    args = pretrain.build_parser().parse_args(["--method", "moco", "--encoder", "convnet", "--bs", "16",
                                               "--epochs", "3", "--fraction", "0.5"])
    pretrain.check_args(args)
    assert args.tau == 0.2
    assert args.out_dir == os.path.join("runs", "moco_convnet_bn_simclr_t0.2_bs16_e3_f0.5_s0")
    args = pretrain.build_parser().parse_args(["--method", "byol"])
    pretrain.check_args(args)
    assert "byol" in args.out_dir and "_t" not in os.path.basename(args.out_dir)


def test_torchvision_backend_one_epoch(tiny_data, tmp_path):
    out = str(tmp_path / "tv")
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 1, "--aug-backend", "torchvision"))
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    assert len(rows) == 1 and rows[0]["step"] == STEPS
    assert os.path.isfile(os.path.join(out, "encoder.pt"))
    assert common.read_json(os.path.join(out, "config.json"))["args"]["aug_backend"] == "torchvision"


# ---------------------------------------------------------------------------- linear evaluation

def test_linear_eval_on_pretrained_encoder(pretrained, tiny_data):
    method, out = pretrained
    encoder_before = mtime(os.path.join(out, "encoder.pt"))
    result = run_main(linear_eval, eval_argv(tiny_data[0], "--ckpt", out))
    on_disk = common.read_json(os.path.join(out, "linear_eval.json"))
    assert on_disk["test_acc"] == result["test_acc"]
    assert 0 <= on_disk["test_acc"] <= 100 and 0 <= on_disk["test_top5"] <= 100
    assert on_disk["test_top5"] >= on_disk["test_acc"]
    assert on_disk["kind"] == "linear" and on_disk["feature"] == "h"
    assert on_disk["method"] == method and on_disk["encoder"] == "convnet"
    assert on_disk["ckpt"].endswith("encoder.pt") and on_disk["labelled_images"] == 80
    assert len(on_disk["history"]) == 2 and on_disk["epochs"] == 2
    assert mtime(os.path.join(out, "encoder.pt")) == encoder_before
    # the pre-training config is not replaced by the evaluation's
    assert common.read_json(os.path.join(out, "config.json"))["script"] == "pretrain"


def test_linear_eval_on_z(run_dir, tiny_data):
    out = run_dir("simclr")
    run_main(linear_eval, eval_argv(tiny_data[0], "--ckpt", out, "--feature", "z", "--save-features"))
    result = common.read_json(os.path.join(out, "linear_eval_z.json"))
    assert result["feature"] == "z" and result["kind"] == "linear" and 0 <= result["test_acc"] <= 100
    with np.load(os.path.join(out, "features_test.npz")) as f:
        # a fixed 20% of the test split, at least one image a class: 1 of the 4 per class here
        assert f["feats"].shape == (10, 32) and f["labels"].shape == (10,)  # z has --proj-dim 32


def test_linear_eval_from_encoder_file_with_augmented_training(run_dir, tiny_data, tmp_path):
    out = run_dir("moco")
    dest = str(tmp_path / "aug")
    run_main(linear_eval, eval_argv(tiny_data[0], "--ckpt", os.path.join(out, "encoder.pt"),
                                    "--train-aug", "--epochs", "1", "--out-dir", dest))
    result = common.read_json(os.path.join(dest, "linear_eval.json"))
    assert result["kind"] == "linear" and 0 <= result["test_acc"] <= 100 and len(result["history"]) == 1
    assert common.read_json(os.path.join(dest, "config.json"))["script"] == "linear_eval"


def test_finetune(run_dir, tiny_data, tmp_path):
    out = run_dir("byol")
    dest = str(tmp_path / "ft")
    run_main(linear_eval, eval_argv(tiny_data[0], "--ckpt", out, "--finetune", "--epochs", "1",
                                    "--label-fraction", "0.5", "--out-dir", dest))
    result = common.read_json(os.path.join(dest, "finetune.json"))
    assert result["kind"] == "finetune" and 0 <= result["test_acc"] <= 100
    assert result["labelled_images"] == 40
    assert os.path.isfile(os.path.join(dest, "checkpoint_finetune.pt"))
    assert not os.path.exists(os.path.join(dest, "linear_eval.json"))


def test_random_init_floor(tiny_data, tmp_path):
    dest = str(tmp_path / "rand")
    run_main(linear_eval, eval_argv(tiny_data[0], "--random-init", "--encoder", "convnet", "--out-dir", dest))
    result = common.read_json(os.path.join(dest, "linear_eval.json"))
    assert result["kind"] == "random-init" and result["encoder"] == "convnet"
    assert 0 <= result["test_acc"] <= 100 and len(result["history"]) == 2


def test_sanity_check_catches_a_changed_encoder():
    enc = models.build_encoder("convnet")
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    linear_eval.sanity_check(enc.state_dict(), before)  # unchanged: fine
    with torch.no_grad():
        enc.features[0].weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(RuntimeError, match="features.0.weight"):
        linear_eval.sanity_check(enc.state_dict(), before)
    enc = models.build_encoder("convnet")
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    enc.train()
    enc(torch.randn(4, 3, 32, 32))  # BatchNorm statistics move in train mode: also a change
    with pytest.raises(RuntimeError, match="running_mean|num_batches"):
        linear_eval.sanity_check(enc.state_dict(), before)


def test_linear_eval_leaves_encoder_in_place(run_dir, tiny_data, tmp_path, monkeypatch):
    """linear_eval.main calls sanity_check with the encoder's state after training."""
    out = run_dir("simclr")
    seen = []
    real = linear_eval.sanity_check
    monkeypatch.setattr(linear_eval, "sanity_check", lambda after, before: seen.append(after) or real(after, before))
    run_main(linear_eval, eval_argv(tiny_data[0], "--ckpt", out, "--epochs", "1", "--out-dir", str(tmp_path)))
    assert len(seen) == 1
    saved = torch.load(os.path.join(out, "encoder.pt"), weights_only=False)["state_dict"]
    assert seen[0].keys() == saved.keys()
    assert all(torch.equal(seen[0][k].cpu(), saved[k]) for k in saved)  # bit for bit the pre-trained f


# ---------------------------------------------------------------------------- supervised baseline

def supervised_argv(data, out, epochs=2):
    return ["--data-dir", data, "--no-download", "--device", "cpu", "--workers", "0", "--encoder", "convnet",
            "--epochs", str(epochs), "--bs", "16", "--out-dir", out]


def test_supervised_baseline(tiny_data, tmp_path):
    out = str(tmp_path / "sup")
    result = run_main(supervised_baseline, supervised_argv(tiny_data[0], out))
    on_disk = common.read_json(os.path.join(out, "supervised.json"))
    assert on_disk["test_acc"] == result["test_acc"] and 0 <= on_disk["test_acc"] <= 100
    assert on_disk["kind"] == "supervised" and on_disk["labelled_images"] == 80
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all({"epoch", "loss", "lr", "train_acc", "seconds"} <= set(r) for r in rows)
    assert common.read_json(os.path.join(out, "config.json"))["script"] == "supervised_baseline"
    assert os.path.isfile(os.path.join(out, "checkpoint.pt"))
    # finished: a second call changes nothing
    before = mtime(os.path.join(out, "supervised.json")), open(os.path.join(out, "metrics.jsonl")).read()
    run_main(supervised_baseline, supervised_argv(tiny_data[0], out))
    assert (mtime(os.path.join(out, "supervised.json")), open(os.path.join(out, "metrics.jsonl")).read()) == before


def test_supervised_resume_equals_uninterrupted(tiny_data, tmp_path, monkeypatch):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    run_main(supervised_baseline, supervised_argv(tiny_data[0], a))
    real, calls = common.append_jsonl, []

    def append_then_die(path, record):  # dies in epoch 2, before its line and checkpoint are written
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted
        real(path, record)
    with monkeypatch.context() as mp:
        mp.setattr(common, "append_jsonl", append_then_die)
        with pytest.raises(Interrupted):
            run_main(supervised_baseline, supervised_argv(tiny_data[0], b))
    assert len(read_metrics(os.path.join(b, "metrics.jsonl"))) == 1
    assert not os.path.exists(os.path.join(b, "supervised.json"))
    run_main(supervised_baseline, supervised_argv(tiny_data[0], b))
    ra, rb = (common.read_json(os.path.join(d, "supervised.json")) for d in (a, b))
    assert ra["test_acc"] == rb["test_acc"] and ra["test_top5"] == rb["test_top5"]
    ma, mb = (read_metrics(os.path.join(d, "metrics.jsonl")) for d in (a, b))
    assert [r["loss"] for r in ma] == [r["loss"] for r in mb]
    sa, sb = (torch.load(os.path.join(d, "checkpoint.pt"), weights_only=False)["model"] for d in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------- resume equality

def _interrupt_in_epoch(mp, epoch_index, after_batches):
    """Make pretrain die after `after_batches` steps of epoch `epoch_index` (0-based)."""
    real = common.TwoViews.epoch

    def epoch(self, e):
        for i, batch in enumerate(real(self, e)):
            if e == epoch_index and i == after_batches:
                raise Interrupted
            yield batch
    mp.setattr(common.TwoViews, "epoch", epoch)


def _interrupt_at_third_checkpoint(mp):
    """Die after epoch 3's metrics line is written but before its checkpoint is: on resume the
    extra line must be dropped and the epoch trained again."""
    real, calls = common.save_atomic, []

    def save(obj, path):
        calls.append(path)
        if len(calls) == 3:
            raise Interrupted
        real(obj, path)
    mp.setattr(common, "save_atomic", save)


def _assert_same_run(a, b):
    ea, eb = (torch.load(os.path.join(d, "encoder.pt"), weights_only=False) for d in (a, b))
    for part in ("state_dict", "head_state_dict"):
        assert ea[part].keys() == eb[part].keys()
        for k in ea[part]:
            assert torch.equal(ea[part][k], eb[part][k]), f"{part}.{k}"
    ca, cb = (torch.load(os.path.join(d, "checkpoint.pt"), weights_only=False) for d in (a, b))
    assert ca["epoch"] == cb["epoch"] == 3
    # everything the method holds: queue and pointer, key/target networks, BYOL's momentum
    assert ca["model"].keys() == cb["model"].keys()
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    for k, sa in ca["optimizer"]["state"].items():
        for name, v in sa.items():
            if torch.is_tensor(v):
                assert torch.equal(v, cb["optimizer"]["state"][k][name]), f"optimizer {k}.{name}"
    assert torch.equal(ca["rng"]["torch"], cb["rng"]["torch"])
    ma, mb = (read_metrics(os.path.join(d, "metrics.jsonl")) for d in (a, b))
    assert len(ma) == len(mb) == 3
    for ra, rb in zip(ma, mb):
        for key in ("epoch", "step", "loss", "lr", "pos_top1", "knn_top1"):
            assert ra.get(key) == rb.get(key), (ra["epoch"], key)


@pytest.mark.parametrize("method,interrupt", [("simclr", "mid_epoch"), ("simclr", "before_checkpoint"),
                                              ("moco", "mid_epoch"), ("byol", "mid_epoch")])
def test_resume_equals_uninterrupted(tiny_data, tmp_path, monkeypatch, method, interrupt):
    data = tiny_data[0]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    run_main(pretrain, pretrain_argv(data, a, method, 3))

    with monkeypatch.context() as mp:
        if interrupt == "mid_epoch":
            _interrupt_in_epoch(mp, epoch_index=2, after_batches=2)
        else:
            _interrupt_at_third_checkpoint(mp)
        with pytest.raises(Interrupted):
            run_main(pretrain, pretrain_argv(data, b, method, 3))
    assert not os.path.exists(os.path.join(b, "encoder.pt"))
    ckpt = torch.load(os.path.join(b, "checkpoint.pt"), weights_only=False)
    assert ckpt["epoch"] == 2
    assert len(read_metrics(os.path.join(b, "metrics.jsonl"))) == (2 if interrupt == "mid_epoch" else 3)

    run_main(pretrain, pretrain_argv(data, b, method, 3))  # the same command again resumes
    _assert_same_run(a, b)


def test_resume_really_resumes(tiny_data, tmp_path, monkeypatch):
    """The resumed run starts at epoch 3: it does not train epochs 1 and 2 again."""
    b = str(tmp_path / "b")
    with monkeypatch.context() as mp:
        _interrupt_in_epoch(mp, epoch_index=2, after_batches=0)
        with pytest.raises(Interrupted):
            run_main(pretrain, pretrain_argv(tiny_data[0], b, "simclr", 3))
    seen = []
    real = common.TwoViews.epoch

    def epoch(self, e):
        seen.append(e)
        yield from real(self, e)
    monkeypatch.setattr(common.TwoViews, "epoch", epoch)
    run_main(pretrain, pretrain_argv(tiny_data[0], b, "simclr", 3))
    assert seen == [2]
    assert [r["epoch"] for r in read_metrics(os.path.join(b, "metrics.jsonl"))] == [1, 2, 3]
