"""pretrain.py over several processes (gloo, CPU): `torchrun --nproc_per_node 2 pretrain.py`
end to end on the fixture data followed by linear_eval.py on its encoder, and a run interrupted
and resumed under two processes equal to the uninterrupted one.

    python -m pytest -q tests/test_torchrun.py
"""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

import common
import dist
import pretrain
from conftest import ROOT, run_main
from test_dist import free_port

pytestmark = pytest.mark.slow


def argv(data, out, method="simclr", epochs=2, *extra):
    a = ["--data-dir", data, "--no-download", "--device", "cpu", "--workers", "0", "--encoder", "convnet",
         "--method", method, "--fraction", "1", "--bs", "16", "--epochs", str(epochs), "--knn-every", "1",
         "--proj-dim", "32", "--out-dir", out, "--amp", "off"]
    return a + (["--queue-size", "64"] if method == "moco" else []) + list(extra)


def read_metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_torchrun_two_processes_then_linear_eval(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(free_port()), "pretrain.py", *argv(tiny_data[0], out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "2 processes x 8 images, global BN" in run.stdout
    assert run.stdout.count("epoch 2/2 | loss") == 1  # rank 0 alone prints
    config = common.read_json(os.path.join(out, "config.json"))
    assert config["world_size"] == 2 and config["args"]["bs"] == 16
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    assert [r["epoch"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [5, 10]
    assert all("knn_top1" in r for r in rows)
    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=False)
    assert ckpt["world_size"] == 2 and len(ckpt["rng_ranks"]) == 2
    assert not torch.equal(ckpt["rng_ranks"][0]["torch"], ckpt["rng_ranks"][1]["torch"])  # own streams
    enc = torch.load(os.path.join(out, "encoder.pt"), weights_only=False)
    assert not [k for k in enc["state_dict"] if k.startswith("module.")]
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]

    ev = subprocess.run([sys.executable, "linear_eval.py", "--data-dir", tiny_data[0], "--no-download",
                         "--device", "cpu", "--workers", "0", "--epochs", "1", "--bs", "16", "--ckpt", out],
                        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert 0 <= common.read_json(os.path.join(out, "linear_eval.json"))["test_acc"] <= 100


class Interrupted(Exception):
    pass


def _worker(rank, world, port, args, interrupt):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    if interrupt:  # every rank dies after 2 steps of the second epoch (0-based 1)
        real = common.TwoViews.epoch

        def epoch(self, e):
            for i, b in enumerate(real(self, e)):
                if e == 1 and i == 2:
                    raise Interrupted
                yield b
        common.TwoViews.epoch = epoch
    try:
        run_main(pretrain, args)
    except Interrupted:
        pass
    finally:
        dist.shutdown()


def spawn(args, interrupt=False):
    mp.spawn(_worker, args=(2, free_port(), args, interrupt), nprocs=2, join=True)


@pytest.mark.parametrize("method", ["simclr", "moco", "byol"])
def test_resume_under_two_processes_equals_uninterrupted(tiny_data, tmp_path, method):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    spawn(argv(tiny_data[0], a, method))
    spawn(argv(tiny_data[0], b, method), interrupt=True)
    assert not os.path.exists(os.path.join(b, "encoder.pt"))
    assert torch.load(os.path.join(b, "checkpoint.pt"), weights_only=False)["epoch"] == 1
    spawn(argv(tiny_data[0], b, method))  # the same command again resumes
    ca, cb = (torch.load(os.path.join(d, "checkpoint.pt"), weights_only=False) for d in (a, b))
    for k in ca["model"]:  # encoder, head, MoCo's key network and queue, BYOL's target network
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    for r in range(2):
        assert torch.equal(ca["rng_ranks"][r]["torch"], cb["rng_ranks"][r]["torch"])
    ma, mb = (read_metrics(os.path.join(d, "metrics.jsonl")) for d in (a, b))
    assert [(r["loss"], r["knn_top1"]) for r in ma] == [(r["loss"], r["knn_top1"]) for r in mb]
    assert ma[-1]["loss"] == ma[-1]["loss"]  # finite


def test_resume_with_another_number_of_processes_is_refused(tiny_data, tmp_path):
    out = str(tmp_path / "a")
    spawn(argv(tiny_data[0], out), interrupt=True)
    with pytest.raises(common.UserError, match="2 process"):
        run_main(pretrain, argv(tiny_data[0], out))


def test_torchrun_refuses_a_batch_that_does_not_split(tiny_data, tmp_path):
    out = str(tmp_path / "odd")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(free_port()), "pretrain.py", *argv(tiny_data[0], out), "--bs", "15"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode != 0
    assert "--bs 15 (the global batch) must be a multiple of the 2 processes" in run.stderr
    assert not os.path.exists(os.path.join(out, "config.json"))
