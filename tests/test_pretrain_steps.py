"""pretrain.py's recipe stated once (--print-config), its checkpoint interval (--ckpt-every), its
safety with several processes (ranks agree on resuming, one machine prepares the data, temporary
files per process) and --compile on the CPU.

    python -m pytest -q tests/test_pretrain_steps.py       # -m "not slow" skips the multi-process ones
"""
import json
import os

import pytest
import torch
import torch.multiprocessing as mp

import common
import dataloader
import dist
import pretrain
from conftest import fake_cifar, run_main, write_image_folder
from test_dist import free_port
from test_scripts import Interrupted, _interrupt_in_epoch, pretrain_argv, read_metrics


# ---------------------------------------------------------------------------- --print-config

def test_print_config_states_what_the_run_does(tiny_data, tmp_path, capsys):
    """The resolved recipe, printed without training, is the one the run then records."""
    out = str(tmp_path / "run")
    flags = pretrain_argv(tiny_data[0], out, "simclr", 3) + ["--warmup-epochs", "1"]
    assert run_main(pretrain, flags + ["--print-config"]) is None
    printed = json.loads(capsys.readouterr().out)
    assert not os.path.exists(out)  # nothing trained, nothing written
    run_main(pretrain, flags)
    schedule = common.read_json(os.path.join(out, "config.json"))["schedule"]
    assert {k: printed[k] for k in schedule} == schedule
    assert printed["out_dir"] == out and printed["epochs"] == 3 and printed["tau"] == 0.5


def test_print_config_without_data_assumes_cifar10_and_names_the_run(tmp_path, capsys):
    args = pretrain.build_parser().parse_args(["--data-dir", str(tmp_path / "none"), "--method", "moco",
                                               "--bs", "256", "--epochs", "10", "--print-config"])
    pretrain.main(args)
    c = json.loads(capsys.readouterr().out)
    assert c["images"] == 5000 and c["steps_per_epoch"] == 19 and c["total_steps"] == 190
    assert c["warmup_steps"] == 19  # 10 epochs of warm-up capped at a tenth of the run
    assert c["tau"] == 0.2 and c["out_dir"] == os.path.join("runs", "moco_resnet18_bn_simclr_t0.2_bs256_e10_f0.1_s0")
    assert c["default_tau"] == {"simclr": 0.5, "moco": 0.2, "byol": None}
    assert not os.path.exists(tmp_path / "none")


def test_run_names_keep_the_numbers_as_written(capsys):
    """run_all.sh's committed records are named with 1.0, not 1: the default name agrees."""
    args = pretrain.build_parser().parse_args(["--tau", "1.0", "--fraction", "1.0", "--encoder", "convnet",
                                               "--epochs", "10"])
    pretrain.check_args(args)
    assert os.path.basename(args.out_dir) == "simclr_convnet_bn_simclr_t1.0_bs256_e10_f1.0_s0"


# ---------------------------------------------------------------------------- --ckpt-every

def test_ckpt_every_writes_every_nth_epoch_and_the_last(tiny_data, tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    saved = []
    real = common.save_atomic
    monkeypatch.setattr(common, "save_atomic", lambda obj, path: (saved.append(obj.get("epoch", "encoder")), real(obj, path)))
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 3, "--ckpt-every", "2"))
    assert saved == [2, 3, "encoder"]
    assert [r["epoch"] for r in read_metrics(os.path.join(out, "metrics.jsonl"))] == [1, 2, 3]


def test_ckpt_every_resumes_from_the_last_checkpoint_written(tiny_data, tmp_path, monkeypatch):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    flags = ("--ckpt-every", "2")
    run_main(pretrain, pretrain_argv(tiny_data[0], a, "simclr", 3, *flags))
    with monkeypatch.context() as m:
        _interrupt_in_epoch(m, epoch_index=2, after_batches=1)
        with pytest.raises(Interrupted):
            run_main(pretrain, pretrain_argv(tiny_data[0], b, "simclr", 3, *flags))
    assert torch.load(os.path.join(b, "checkpoint.pt"), weights_only=False)["epoch"] == 2
    run_main(pretrain, pretrain_argv(tiny_data[0], b, "simclr", 3, *flags))
    ea, eb = (torch.load(os.path.join(d, "encoder.pt"), weights_only=False)["state_dict"] for d in (a, b))
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    assert read_metrics(os.path.join(a, "metrics.jsonl")) != [] and \
        [r["loss"] for r in read_metrics(os.path.join(a, "metrics.jsonl"))] == \
        [r["loss"] for r in read_metrics(os.path.join(b, "metrics.jsonl"))]


def test_dist_timeout_reaches_the_process_group(tiny_data, tmp_path, monkeypatch):
    seen = {}

    def init(device, timeout_s=None):
        seen["timeout_s"] = timeout_s
        raise Interrupted
    monkeypatch.setattr(dist, "init", init)
    with pytest.raises(Interrupted):
        run_main(pretrain, pretrain_argv(tiny_data[0], str(tmp_path / "r"), "simclr", 1, "--dist-timeout", "60"))
    assert seen == {"timeout_s": 60}


def test_a_wrong_backend_override_is_one_line(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(dist.BACKEND_ENV, "mpi")
    with pytest.raises(common.UserError, match="SSL_DIST_BACKEND='mpi': expected nccl or gloo"):
        run_main(pretrain, pretrain_argv(tiny_data[0], str(tmp_path / "r"), "simclr", 1))


# ---------------------------------------------------------------------------- temporary files

def test_temporary_files_are_per_process(tmp_path, monkeypatch):
    """Two processes (ranks, run_all jobs) writing the same file never share a temporary file."""
    moved = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (moved.append(os.path.basename(src)), real(src, dst)))
    common.write_json(str(tmp_path / "a.json"), {"a": 1})
    common.save_atomic({"b": 2}, str(tmp_path / "b.pt"))
    root = write_image_folder(str(tmp_path / "imgs"), *fake_cifar(1, 1))
    dataloader.load_cifar10(root, download=False)  # decodes, writes the cache
    assert len(moved) == 3 and all(f".{os.getpid()}." in name for name in moved), moved


# ---------------------------------------------------------------------------- several processes

def _worker(rank, world, port, root, run, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init(torch.device("cpu"))
    results = {}
    try:
        # 1. the first rank decodes the image folder (train and test: 2 calls) and writes the cache;
        # the other reads it
        decoded = []
        real = dataloader._decode
        dataloader._decode = lambda *a: (decoded.append(1), real(*a))[1]
        x = dist.local_first(lambda: dataloader.load_cifar10(root, download=False))[0]
        dataloader._decode = real
        results["decoded"], results["images"] = len(decoded), len(x)
        # 2. a run directory that only rank 0 sees (no shared storage): one clear error on every
        # rank, at once, instead of rank 0 resuming while the other starts and both wait
        real_exists = os.path.exists
        hidden = ("encoder.pt", "checkpoint.pt")
        os.path.exists = lambda p: False if rank == 1 and str(p).endswith(hidden) else real_exists(p)
        for case in ("finished", "resume"):
            if case == "resume":
                if rank == 0:
                    os.remove(os.path.join(run, "encoder.pt"))  # checkpoint.pt stays
                dist.barrier()
            try:
                run_main(pretrain, pretrain_argv(root, run, "simclr", 1, "--fraction", "1", "--bs", "10"))
                results[case] = "ran"
            except common.UserError as e:
                results[case] = str(e)
        os.path.exists = real_exists
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.shutdown()


@pytest.mark.slow
def test_ranks_prepare_data_once_and_agree_on_resuming(tmp_path):
    root = write_image_folder(str(tmp_path / "imgs"), *fake_cifar(2, 1))
    run = str(tmp_path / "run")
    run_main(pretrain, pretrain_argv(root, run, "simclr", 1, "--fraction", "1", "--bs", "10"))  # one process
    assert os.path.exists(os.path.join(run, "encoder.pt"))
    os.remove(os.path.join(root, dataloader.CACHE_NAME))  # so that the ranks decode again
    mp.spawn(_worker, args=(2, free_port(), root, run, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(str(tmp_path / f"rank{r}.pt")) for r in (0, 1))
    assert (r0["decoded"], r1["decoded"]) == (2, 0) and r0["images"] == r1["images"] == 20
    for r in (r0, r1):
        assert "the ranks disagree about whether" in r["finished"] and "encoder.pt exists" in r["finished"]
        assert "rank 0: True; rank 1: False" in r["finished"] and "shared by every node" in r["finished"]
        assert "checkpoint.pt exists" in r["resume"]


# ---------------------------------------------------------------------------- --compile

@pytest.mark.slow
def test_compile_on_the_cpu(tiny_data, tmp_path):
    """--compile trains (torch.compile's CPU back end) and saves the plain module's weights."""
    out = str(tmp_path / "compiled")
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 1, "--compile"))
    rows = read_metrics(os.path.join(out, "metrics.jsonl"))
    assert len(rows) == 1 and rows[0]["loss"] == rows[0]["loss"]
    enc = torch.load(os.path.join(out, "encoder.pt"), weights_only=False)
    assert not [k for k in enc["state_dict"] if "_orig_mod" in k or k.startswith("module.")]
    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=False)
    assert not [k for k in ckpt["model"] if "_orig_mod" in k]
