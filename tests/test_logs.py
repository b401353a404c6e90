"""What a user sees while a job runs: the estimated time left (logs.eta_text, logs.Progress),
one progress line per epoch or so in a log (stdout not a terminal), and pretrain's advice for a
ResNet on a CPU.

    python -m pytest -q tests/test_logs.py
"""
import functools
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

import common
import linear_eval
import logs
import pretrain
import supervised_baseline
from conftest import run_main

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


class Stop(Exception):
    pass


class Clock:
    """A stand-in for time.monotonic that moves only when told to."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def progress_lines(text, prefix):
    return [line for line in text.splitlines() if line.startswith(prefix)]


# ---------------------------------------------------------------------------- the arithmetic

@pytest.mark.parametrize("seconds,text", [(0, "0 s"), (40.4, "40 s"), (89.4, "89 s"), (25 * 60, "25 min"),
                                          (59 * 60 + 20, "59 min"), (3600, "1 h 0 min"),
                                          (12 * 3600 + 40 * 60 + 10, "12 h 40 min"),
                                          (3 * 86400 + 4 * 3600 + 100, "3 d 4 h")])
def test_duration_text(seconds, text):
    assert logs.duration_text(seconds) == text


def test_eta_text_of_the_issue():
    """ResNet-18 on 2 cores: 500 epochs x 19 steps of 256 images at 53 images/s."""
    seconds = 10 * 256 / 53  # the first 10 steps
    assert logs.eta_text(10, 500 * 19, seconds, images=10 * 256) == "about 12 h 44 min to go at 53 img/s"


def test_eta_text_is_the_same_pace_for_the_steps_left():
    assert logs.eta_text(10, 1000, 20.0) == "about 33 min to go"  # 2 s a step, 990 steps left
    assert logs.eta_text(500, 1000, 30.0) == "about 30 s to go"
    assert logs.eta_text(1000, 1000, 30.0) == "about 0 s to go"
    assert logs.eta_text(4, 8, 2.0, images=4000) == "about 2 s to go at 2,000 img/s"
    with pytest.raises(ValueError):
        logs.eta_text(0, 1000, 1.0)


# ---------------------------------------------------------------------------- Progress

def test_progress_times_the_first_steps_on_a_cpu_after_the_first_one():
    clock = Clock()
    p = logs.Progress(total_steps=1000, done_steps=0, device=CPU, early=10, clock=clock)
    clock.now += 60  # the first step pays for warm-up: not timed
    assert p.step(256) is None
    lines = []
    for _ in range(20):
        clock.now += 2.0  # then 2 s a step
        lines.append(p.step(256))
    early = [(i, line) for i, line in enumerate(lines) if line]
    assert len(early) == 1 and early[0][0] == 9  # once, after the 10 steps past the first
    assert early[0][1] == "first 10 steps timed: about 33 min to go at 128 img/s"  # 989 steps left at 2 s


def test_progress_says_nothing_early_for_a_short_run_or_on_a_gpu():
    for device, total, pace in ((CPU, 40, 1.0), (CUDA, 10_000, 5.0)):  # 29 s left; a GPU queues its steps
        clock = Clock()
        p = logs.Progress(total, 0, device, early=10, min_left=60, clock=clock)
        for _ in range(total):
            clock.now += pace
            assert p.step(16) is None, device


def test_progress_eta_counts_only_the_steps_of_this_process():
    """Resumed after 600 of 1000 steps: the pace is that of this process's steps alone."""
    clock = Clock()
    p = logs.Progress(total_steps=1000, done_steps=600, device=CUDA, clock=clock)
    assert p.eta() == ""  # nothing timed yet
    for _ in range(100):
        clock.now += 3.0
        p.step(100)
    assert p.eta() == "about 15 min to go"  # 300 steps left at 3 s
    assert p.eta(with_rate=True) == "about 15 min to go at 33 img/s"
    for _ in range(300):
        p.step(100)
    assert p.eta() == ""  # finished: nothing to go


# ---------------------------------------------------------------------------- lines in a log

def test_fit_classifier_writes_a_line_every_few_epochs_when_stdout_is_not_a_terminal(capsys):
    assert not sys.stdout.isatty()  # as in a log: tqdm's bar is off
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.randint(0, 10, (64,))
    common.fit_classifier(nn.Linear(8, 10), lambda epoch: common.tensor_batches(x, y, 16, True, epoch),
                          lambda: common.tensor_batches(x, y, 64, False), epochs=60, steps_per_epoch=4,
                          lr=0.1, wd=0.0, device=CPU, desc="probe")
    lines = progress_lines(capsys.readouterr().out, "probe epoch ")
    epochs = [int(line.split()[2].split("/")[0]) for line in lines]
    assert epochs[0] == 1 and epochs[-1] == 60 and 20 <= len(lines) <= 30  # every 3rd epoch, plus the first
    assert epochs == sorted(set(epochs))
    for line in lines:
        assert all(f"{part} " in line for part in ("loss", "train acc", "lr")) and " s" in line
    assert all("to go" in line for line in lines[:-1]) and "to go" not in lines[-1]


def test_supervised_baseline_prints_each_epoch_with_the_time_left(tiny_data, tmp_path, capsys):
    run_main(supervised_baseline, ["--data-dir", tiny_data[0], "--no-download", "--device", "cpu", "--workers", "0",
                                   "--encoder", "convnet", "--epochs", "3", "--bs", "16",
                                   "--out-dir", str(tmp_path / "sup")])
    lines = progress_lines(capsys.readouterr().out, "supervised epoch ")
    assert [line.split()[2] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "to go" in lines[0] and "to go" not in lines[-1]


def test_linear_eval_prints_progress(tiny_data, tmp_path, capsys):
    run_main(linear_eval, ["--data-dir", tiny_data[0], "--no-download", "--device", "cpu", "--workers", "0",
                           "--random-init", "--encoder", "convnet", "--epochs", "100", "--bs", "16",
                           "--out-dir", str(tmp_path / "rand")])
    out = capsys.readouterr().out
    assert "features of 80 labelled and 40 test images" in out
    lines = progress_lines(out, "random-init epoch ")
    assert 20 <= len(lines) <= 30 and lines[-1].startswith("random-init epoch 100/100")


def pretrain_argv(data, out, epochs, *extra):
    return ["--data-dir", data, "--no-download", "--device", "cpu", "--workers", "0", "--encoder", "convnet",
            "--fraction", "1", "--bs", "16", "--epochs", str(epochs), "--knn-every", "0", "--proj-dim", "16",
            "--out-dir", out, *extra]


def test_pretrain_prints_the_time_left(tiny_data, tmp_path, capsys, monkeypatch):
    """The early estimate (made due at once here: 3 timed steps, whatever the time left) and the
    time left on each epoch's line; 5 steps an epoch."""
    monkeypatch.setattr(logs, "Progress", functools.partial(logs.Progress, early=3, min_left=0))
    run_main(pretrain, pretrain_argv(tiny_data[0], str(tmp_path / "run"), 3))
    out = capsys.readouterr().out.splitlines()
    early = [line for line in out if line.startswith("first 3 steps timed: about ")]
    assert len(early) == 1 and early[0].endswith(" img/s") and " to go at " in early[0]
    epochs = progress_lines("\n".join(out), "epoch ")
    assert len(epochs) == 3 and out.index(early[0]) < out.index(epochs[0])  # in the first epoch
    assert all("to go" in line for line in epochs[:2]) and "to go" not in epochs[2]


# ---------------------------------------------------------------------------- a ResNet on a CPU

def test_cpu_hint_gives_the_cpu_sized_command():
    def hint(argv, device=CPU):
        args = pretrain.build_parser().parse_args(argv)
        pretrain.check_args(args)
        return pretrain.cpu_hint(args, device)
    assert hint(["--tau", "0.5", "--bs", "256"]).endswith(
        "sized for a CPU: python pretrain.py --recipe quick --device cpu")
    assert "resnet18 on a CPU" in hint([])
    assert hint(["--method", "moco", "--tau", "0.2", "--encoder", "resnet50", "--data-dir", "my data",
                 "--no-download"]).endswith("--device cpu --method moco --data-dir 'my data' --no-download")
    assert hint(["--encoder", "convnet"]) is None
    assert hint([], CUDA) is None


def test_pretrain_prints_the_cpu_hint_before_loading_data(tiny_data, tmp_path, capsys, monkeypatch):
    def stop(args):
        raise Stop
    monkeypatch.setattr(common, "load_data", stop)
    argv = pretrain_argv(tiny_data[0], str(tmp_path / "run"), 1)
    argv[argv.index("--encoder") + 1] = "resnet18"
    with pytest.raises(Stop):
        run_main(pretrain, argv)
    assert pretrain.CPU_COMMAND in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "run")


# ---------------------------------------------------------------------------- no silent minutes

def test_progress_gives_a_rough_estimate_after_one_timed_step_then_a_better_one():
    """By default on a CPU: after the step past the first (a ResNet-18 step can take 20 s, so ten
    of them are minutes of silence), then again after ten."""
    clock = Clock()
    p = logs.Progress(total_steps=1000, done_steps=0, device=CPU, clock=clock)
    clock.now += 60
    assert p.step(256) is None
    lines = []
    for _ in range(20):
        clock.now += 2.0
        lines.append(p.step(256))
    early = [(i, line) for i, line in enumerate(lines) if line]
    assert [i for i, _ in early] == [0, 9]  # after 1, then 10, steps past the first
    assert early[0][1] == "first step timed (a rough guess): about 33 min to go at 128 img/s"  # 998 left at 2 s
    assert early[1][1].startswith("first 10 steps timed: about 33 min")


def test_say_time_left_of_the_features(capsys):
    logs.say_time_left("features", 60_000)(500, 2.0)  # 250 img/s: 4 minutes for 60,000 images
    logs.say_time_left("features", 1_000)(500, 2.0)  # 4 s: not worth a line
    assert capsys.readouterr().out.splitlines() == ["features: about 4 min at 250 img/s"]


def test_extract_features_times_its_second_batch():
    timed = []
    images = np.zeros((1100, 32, 32, 3), dtype=np.uint8)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4))
    feats = common.extract_features(net, images, CPU, bs=512, timed=lambda n, s: timed.append((n, s)))
    assert feats.shape == (1100, 4) and len(timed) == 1 and timed[0][0] == 512 and timed[0][1] > 0


def test_linear_eval_says_how_long_the_features_take(tiny_data, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(logs, "say_time_left", lambda what, total: asked.append((what, total)))
    run_main(linear_eval, ["--data-dir", tiny_data[0], "--no-download", "--device", "cpu", "--workers", "0",
                           "--random-init", "--encoder", "convnet", "--epochs", "1", "--bs", "16",
                           "--out-dir", str(tmp_path / "rand")])
    assert asked == [("features", 80 + 40)]  # every image the features are computed of


def test_supervised_baseline_says_what_it_trains(tiny_data, tmp_path, capsys):
    run_main(supervised_baseline, ["--data-dir", tiny_data[0], "--no-download", "--device", "cpu", "--workers", "0",
                                   "--encoder", "convnet", "--epochs", "2", "--bs", "16",
                                   "--out-dir", str(tmp_path / "sup")])
    out = capsys.readouterr().out
    assert "supervised convnet: 80 labelled images, 2 epochs of 5 steps" in out
    assert "sized for a CPU" not in out  # the convnet is the CPU-sized encoder


def test_supervised_cpu_hint_before_loading_data(tiny_data, tmp_path, capsys, monkeypatch):
    def stop(args):
        raise Stop
    monkeypatch.setattr(common, "load_data", stop)
    with pytest.raises(Stop):
        run_main(supervised_baseline, ["--data-dir", tiny_data[0], "--no-download", "--device", "cpu",
                                       "--label-fraction", "0.1", "--out-dir", str(tmp_path / "sup")])
    out = capsys.readouterr().out
    assert "resnet18 on a CPU trains for hours" in out
    assert out.strip().endswith(supervised_baseline.CPU_COMMAND + " --label-fraction 0.1 --data-dir " + tiny_data[0])
    args = supervised_baseline.build_parser().parse_args(["--encoder", "convnet"])
    assert supervised_baseline.cpu_hint(args, CPU) is None and supervised_baseline.cpu_hint(
        supervised_baseline.build_parser().parse_args([]), CUDA) is None
