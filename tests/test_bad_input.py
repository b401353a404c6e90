"""Bad input to the three scripts: each ends with a one-line message and exit status 2, no
traceback, and no finished result overwritten.

A few representative cases run the real command line in a subprocess (each pays the ~3 s of
importing torch); the rest go through the same code in-process: the parser (argparse exits with
status 2) and common.run_cli, which turns UserError / DataError into one line and status 2.

    python -m pytest -q tests/test_bad_input.py
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import common
import dataloader
import linear_eval
import pretrain
import supervised_baseline
from conftest import fake_cifar, run_main, write_batches, write_image_folder

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"pretrain": pretrain, "linear_eval": linear_eval, "supervised_baseline": supervised_baseline}
CPU = ["--device", "cpu", "--workers", "0", "--no-download"]


class Interrupted(Exception):
    pass


def cli(script, *args):
    """The real command line: python <script>.py args..., from the repository root."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, f"{script}.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def exit_in_process(module, argv, capsys):
    """common.run_cli as the __main__ block calls it: returns (exit status, stderr lines)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        common.run_cli(module.main, module.build_parser(), argv)
    return e.value.code, lines(capsys.readouterr().err)


def assert_one_line_exit_2(module, argv, capsys, *needles):
    code, err = exit_in_process(module, argv, capsys)
    assert code == 2, err
    assert len(err) == 1, err
    assert "error:" in err[0] and "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    return err[0]


def pretrain_argv(data, out, *extra, epochs=1):
    return ["--data-dir", data, *CPU, "--encoder", "convnet", "--fraction", "1", "--bs", "16",
            "--epochs", str(epochs), "--knn-every", "0", "--proj-dim", "16", "--out-dir", out, *extra]


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory):
    """A finished 1-epoch SimCLR run with a finished linear evaluation in it."""
    out = str(tmp_path_factory.mktemp("finished"))
    run_main(pretrain, pretrain_argv(tiny_data[0], out))
    run_main(linear_eval, ["--data-dir", tiny_data[0], *CPU, "--ckpt", out, "--epochs", "1", "--bs", "16"])
    return out


def snapshot(folder):
    """{relative path: (mtime, bytes)} of every file under a folder (its tb/ events included)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


@pytest.fixture
def image_folder(tmp_path):
    """A small image-folder copy of CIFAR-10 (2 train, 1 test image per class)."""
    return write_image_folder(str(tmp_path / "images"), *fake_cifar(2, 1))


# ---------------------------------------------------------------------------- the real command line

@pytest.mark.slow  # a process that imports torch; the same check runs in-process below
def test_cli_missing_data_without_download(tmp_path):
    out = tmp_path / "run"
    r = cli("pretrain", "--data-dir", str(tmp_path / "nothing"), *CPU, "--encoder", "convnet",
            "--out-dir", str(out))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    err = lines(r.stderr)
    assert len(err) == 1, r.stderr
    assert "cifar-10-batches-py" in err[0] and "train/" in err[0] and "--no-download" in err[0]
    assert not (out / "checkpoint.pt").exists() and not (tmp_path / "nothing").exists()


@pytest.mark.slow  # a process that imports torch; the same check runs in-process below
def test_cli_truncated_encoder(finished, tmp_path):
    bad = tmp_path / "encoder.pt"
    data = Path(finished, "encoder.pt").read_bytes()
    bad.write_bytes(data[:len(data) // 2])
    before = snapshot(finished)
    r = cli("linear_eval", "--ckpt", str(bad), *CPU, "--out-dir", finished)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    err = lines(r.stderr)
    assert len(err) == 1 and str(bad) in err[0], r.stderr
    assert snapshot(finished) == before  # linear_eval.json of the finished run untouched


@pytest.mark.slow  # a process that imports torch; the same check runs in-process below
def test_cli_class_missing_from_test(image_folder, tmp_path):
    shutil.rmtree(os.path.join(image_folder, "test", "frog"))
    r = cli("supervised_baseline", "--data-dir", image_folder, *CPU, "--encoder", "convnet",
            "--out-dir", str(tmp_path / "sup"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    err = lines(r.stderr)
    assert len(err) == 1 and "frog" in err[0], r.stderr
    assert not (tmp_path / "sup" / "supervised.json").exists()


@pytest.mark.slow  # a process that imports torch; the same check runs in-process below
def test_cli_data_dir_one_level_above_the_data(tmp_path):
    """`--data-dir data` with the images in data/cifar10-jpg/: named, not downloaded next to them."""
    found = write_image_folder(str(tmp_path / "data" / "cifar10-jpg"), *fake_cifar(1, 1), ext="jpg")
    r = cli("pretrain", "--data-dir", str(tmp_path / "data"), "--device", "cpu", "--encoder", "convnet",
            "--out-dir", str(tmp_path / "run"))  # downloading allowed
    assert r.returncode == 2, r.stderr
    assert lines(r.stderr) == [f"pretrain.py: error: found CIFAR-10 in {found}: use --data-dir {found}"]
    assert os.listdir(tmp_path / "data") == ["cifar10-jpg"] and not (tmp_path / "run").exists()


def test_cli_parser_error_exits_2_without_traceback():
    r = cli("pretrain", "--tau", "0")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    last = lines(r.stderr)[-1]
    assert "error:" in last and "--tau" in last


def test_cli_parser_error_is_one_line():
    r = cli("pretrain", "--tau", "0")
    assert r.returncode == 2
    assert len(lines(r.stderr)) == 1, r.stderr


# ---------------------------------------------------------------------------- the parsers

PARSER_CASES = [
    ("pretrain", ["--tau", "0"], "--tau"),
    ("pretrain", ["--tau", "-1"], "--tau"),
    ("pretrain", ["--tau", "nan"], "--tau"),
    ("pretrain", ["--tau", "inf"], "--tau"),
    ("pretrain", ["--tau", "half"], "--tau"),
    ("pretrain", ["--bs", "1"], "--bs"),
    ("pretrain", ["--bs", "0"], "--bs"),
    ("pretrain", ["--bs", "2.5"], "--bs"),
    ("pretrain", ["--fraction", "0"], "--fraction"),
    ("pretrain", ["--fraction", "1.5"], "--fraction"),
    ("pretrain", ["--fraction", "-0.1"], "--fraction"),
    ("pretrain", ["--fraction", "nan"], "--fraction"),
    ("pretrain", ["--encoder", "vgg11"], "--encoder"),
    ("pretrain", ["--head", "mlp3"], "--head"),
    ("pretrain", ["--aug", "rotate"], "--aug"),
    ("pretrain", ["--method", "swav"], "--method"),
    ("pretrain", ["--epochs", "0"], "--epochs"),
    ("pretrain", ["--lr", "0"], "--lr"),
    ("pretrain", ["--lr", "-0.1"], "--lr"),
    ("pretrain", ["--wd", "-1"], "--wd"),
    ("pretrain", ["--seed", "-1"], "--seed"),
    ("pretrain", ["--workers", "-1"], "--workers"),
    ("pretrain", ["--device", "tpu"], "--device"),
    ("pretrain", ["--queue-size", "0"], "--queue-size"),
    ("pretrain", ["--ema", "0"], "--ema"),
    ("pretrain", ["--ema", "1.5"], "--ema"),
    ("pretrain", ["--proj-dim", "0"], "--proj-dim"),
    ("pretrain", ["--warmup-epochs", "-1"], "--warmup-epochs"),
    ("pretrain", ["--aug-backend", "gpu"], "--aug-backend"),
    ("linear_eval", ["--random-init", "--encoder", "convnet", "--bs", "1"], "--bs"),
    ("linear_eval", ["--ckpt", "x", "--label-fraction", "0"], "--label-fraction"),
    ("linear_eval", ["--ckpt", "x", "--label-fraction", "1.5"], "--label-fraction"),
    ("linear_eval", ["--random-init", "--encoder", "alexnet"], "--encoder"),
    ("linear_eval", ["--ckpt", "x", "--feature", "w"], "--feature"),
    ("linear_eval", [], "--ckpt"),
    ("linear_eval", ["--ckpt", "x", "--random-init"], "--random-init"),
    ("supervised_baseline", ["--bs", "1"], "--bs"),
    ("supervised_baseline", ["--label-fraction", "0"], "--label-fraction"),
    ("supervised_baseline", ["--encoder", "vgg11"], "--encoder"),
    ("supervised_baseline", ["--lr", "0"], "--lr"),
    ("supervised_baseline", ["--epochs", "-3"], "--epochs"),
]


@pytest.mark.parametrize("script,argv,flag", PARSER_CASES, ids=[f"{s}{' '.join(a)}" for s, a, _ in PARSER_CASES])
def test_parser_refuses(script, argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        SCRIPTS[script].build_parser().parse_args(argv)
    assert e.value.code == 2
    err = lines(capsys.readouterr().err)
    assert "error:" in err[-1] and flag in err[-1], err[-1]
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("argv", [["--tau", "0.5"], ["--bs", "2"], ["--fraction", "1"], ["--fraction", "0.001"],
                                  ["--ema", "1"], ["--warmup-epochs", "0"], ["--encoder", "resnet50"]])
def test_parser_accepts_edge_values(argv):
    pretrain.build_parser().parse_args(argv)


# ---------------------------------------------------------------------------- data

@pytest.mark.parametrize("script", list(SCRIPTS))
def test_missing_data(script, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dataloader, "_download", lambda d: pytest.fail("tried the network"))
    argv = ["--data-dir", str(tmp_path / "nothing"), *CPU, "--out-dir", str(tmp_path / "out"), "--epochs", "1"]
    argv += {"pretrain": ["--encoder", "convnet"], "supervised_baseline": ["--encoder", "convnet"],
             "linear_eval": ["--random-init", "--encoder", "convnet"]}[script]
    assert_one_line_exit_2(SCRIPTS[script], argv, capsys, "cifar-10-batches-py", "train/")
    for result in ("linear_eval.json", "supervised.json", "encoder.pt", "checkpoint.pt"):
        assert not (tmp_path / "out" / result).exists()


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_data_dir_one_level_above_the_batches(script, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dataloader, "_download", lambda d: pytest.fail("tried the network"))
    found = write_batches(str(tmp_path / "data" / "foo"), *fake_cifar(1, 1))
    argv = ["--data-dir", str(tmp_path / "data"), "--device", "cpu", "--workers", "0",
            "--out-dir", str(tmp_path / "out"), "--epochs", "1"]
    argv += ["--random-init", "--encoder", "convnet"] if script == "linear_eval" else ["--encoder", "convnet"]
    assert_one_line_exit_2(SCRIPTS[script], argv, capsys, f"found CIFAR-10 in {found}: use --data-dir {found}")
    for result in ("linear_eval.json", "supervised.json", "encoder.pt", "checkpoint.pt"):
        assert not (tmp_path / "out" / result).exists()


def test_image_folder_without_images(tmp_path, capsys):
    for split in ("train", "test"):
        for c in ("airplane", "bird"):
            (tmp_path / "data" / split / c).mkdir(parents=True)
    assert_one_line_exit_2(pretrain, pretrain_argv(str(tmp_path / "data"), str(tmp_path / "out")), capsys,
                           "no class folders with images")


def test_class_folder_missing_from_test(image_folder, tmp_path, capsys):
    shutil.rmtree(os.path.join(image_folder, "test", "ship"))
    assert_one_line_exit_2(pretrain, pretrain_argv(image_folder, str(tmp_path / "out")), capsys, "ship", "test")


def test_undecodable_image(image_folder, tmp_path, capsys):
    Path(image_folder, "train", "cat", "zz.png").write_bytes(b"\x89PNG but not really")
    assert_one_line_exit_2(pretrain, pretrain_argv(image_folder, str(tmp_path / "out")), capsys, "zz.png")


# ---------------------------------------------------------------------------- settings main() refuses

def test_batch_larger_than_subset(tiny_data, tmp_path, capsys):
    argv = pretrain_argv(tiny_data[0], str(tmp_path / "out"))
    argv[argv.index("--bs") + 1] = "128"  # 80 images
    assert_one_line_exit_2(pretrain, argv, capsys, "--bs 128")


def test_moco_queue_smaller_than_a_batch(tiny_data, tmp_path, capsys):
    argv = pretrain_argv(tiny_data[0], str(tmp_path / "out"), "--method", "moco", "--queue-size", "16")
    assert_one_line_exit_2(pretrain, argv, capsys, "--queue-size")


@pytest.mark.parametrize("head", ["nobn", "none"])
def test_byol_without_bn_head(tiny_data, tmp_path, capsys, head):
    argv = pretrain_argv(tiny_data[0], str(tmp_path / "out"), "--method", "byol", "--head", head)
    assert_one_line_exit_2(pretrain, argv, capsys, "--head bn")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_cuda_without_gpu(script, tiny_data, tmp_path, capsys):
    argv = ["--data-dir", tiny_data[0], "--no-download", "--device", "cuda", "--out-dir", str(tmp_path)]
    argv += ["--random-init", "--encoder", "convnet"] if script == "linear_eval" else []
    assert_one_line_exit_2(SCRIPTS[script], argv, capsys, "--device cuda")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_fp16_on_the_cpu(script, tiny_data, tmp_path, capsys):
    argv = ["--data-dir", tiny_data[0], *CPU, "--amp", "fp16", "--out-dir", str(tmp_path / "run")]
    argv += ["--random-init", "--encoder", "convnet"] if script == "linear_eval" else []
    assert_one_line_exit_2(SCRIPTS[script], argv, capsys, "--amp fp16")
    assert os.listdir(tmp_path) == []  # nothing written


def test_random_init_needs_encoder(tiny_data, tmp_path, capsys):
    argv = ["--data-dir", tiny_data[0], *CPU, "--random-init", "--out-dir", str(tmp_path)]
    assert_one_line_exit_2(linear_eval, argv, capsys, "--encoder")


def test_finetune_with_feature_z(finished, tiny_data, capsys):
    argv = ["--data-dir", tiny_data[0], *CPU, "--ckpt", finished, "--finetune", "--feature", "z"]
    assert_one_line_exit_2(linear_eval, argv, capsys, "--feature")


def test_random_init_with_feature_z_is_refused(tiny_data, tmp_path, capsys):
    argv = ["--data-dir", tiny_data[0], *CPU, "--random-init", "--encoder", "convnet", "--feature", "z",
            "--epochs", "1", "--bs", "16", "--out-dir", str(tmp_path)]
    code, err = exit_in_process(linear_eval, argv, capsys)
    assert code == 2 and len(err) == 1


# ---------------------------------------------------------------------------- --ckpt

def _ckpt_case(kind, tmp_path, finished):
    path = tmp_path / "encoder.pt"
    if kind == "missing":
        return str(tmp_path / "no_such.pt"), "does not exist"
    if kind == "text":
        path.write_text("these are not weights\n")
        return str(path), "not a readable"
    if kind == "truncated":
        data = Path(finished, "encoder.pt").read_bytes()
        path.write_bytes(data[:len(data) // 2])
        return str(path), "not a readable"
    if kind == "empty":
        path.write_bytes(b"")
        return str(path), "not a readable"
    if kind == "not_a_dict":
        torch.save([1, 2, 3], path)
        return str(path), "list"
    if kind == "pretrain_checkpoint":  # a checkpoint.pt instead of an encoder.pt
        return os.path.join(finished, "checkpoint.pt"), "not an encoder.pt"
    if kind == "dir_without_encoder":
        return str(tmp_path), "has no encoder.pt"
    if kind == "wrong_architecture":
        state = torch.load(os.path.join(finished, "encoder.pt"), weights_only=False)
        state["encoder"] = "resnet18"
        torch.save(state, path)
        return str(path), "does not fit"
    raise AssertionError(kind)


def test_encoder_flag_that_contradicts_the_checkpoint(finished, tiny_data, tmp_path, capsys):
    """--ckpt holds a convnet: --encoder resnet18 is refused, not silently ignored."""
    before = snapshot(finished)
    out = tmp_path / "eval"
    argv = ["--data-dir", tiny_data[0], *CPU, "--ckpt", finished, "--encoder", "resnet18", "--epochs", "1",
            "--out-dir", str(out)]
    assert_one_line_exit_2(linear_eval, argv, capsys, "holds a convnet encoder, not --encoder resnet18")
    assert not out.exists()
    assert snapshot(finished) == before


CKPT_CASES = ["missing", "text", "truncated", "empty", "not_a_dict", "pretrain_checkpoint",
              "dir_without_encoder", "wrong_architecture"]


@pytest.mark.parametrize("kind", CKPT_CASES)
def test_bad_ckpt(kind, finished, tiny_data, tmp_path, capsys):
    ckpt, needle = _ckpt_case(kind, tmp_path, finished)
    before = snapshot(finished)
    out = tmp_path / "eval"
    argv = ["--data-dir", tiny_data[0], *CPU, "--ckpt", ckpt, "--epochs", "1", "--out-dir", str(out)]
    assert_one_line_exit_2(linear_eval, argv, capsys, needle)
    assert not out.exists() or not os.listdir(out)
    assert snapshot(finished) == before


# ---------------------------------------------------------------------------- finished and resumed runs

def test_finished_linear_eval_is_not_redone(finished, tiny_data, monkeypatch):
    path = os.path.join(finished, "linear_eval.json")
    before = snapshot(finished)
    monkeypatch.setattr(common, "fit_classifier", lambda *a, **k: pytest.fail("trained again"))
    result = run_main(linear_eval, ["--data-dir", tiny_data[0], *CPU, "--ckpt", finished, "--epochs", "1",
                                    "--bs", "16"])
    assert result == common.read_json(path)
    assert snapshot(finished) == before


def test_finished_supervised_result_is_not_redone(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "sup"
    out.mkdir()
    common.write_json(str(out / "supervised.json"), {"test_acc": 12.5, "kind": "supervised"})
    before = snapshot(out)
    monkeypatch.setattr(common, "fit_classifier", lambda *a, **k: pytest.fail("trained again"))
    result = run_main(supervised_baseline, ["--data-dir", tiny_data[0], *CPU, "--encoder", "convnet",
                                            "--out-dir", str(out)])
    assert result["test_acc"] == 12.5
    assert snapshot(out) == before


@pytest.fixture
def interrupted(tiny_data, tmp_path, monkeypatch):
    """A 2-epoch run stopped in its second epoch: config.json and checkpoint.pt of epoch 1."""
    out = str(tmp_path / "interrupted")
    real = common.TwoViews.epoch

    def epoch(self, e):
        if e == 1:
            raise Interrupted
        yield from real(self, e)
    with monkeypatch.context() as mp:
        mp.setattr(common.TwoViews, "epoch", epoch)
        with pytest.raises(Interrupted):
            run_main(pretrain, pretrain_argv(tiny_data[0], out, epochs=2))
    assert os.path.isfile(os.path.join(out, "checkpoint.pt"))
    return out


@pytest.mark.parametrize("change", [["--tau", "0.2"], ["--bs", "8"], ["--method", "moco", "--queue-size", "64"],
                                    ["--aug", "crop"], ["--crop-min", "0.2"], ["--seed", "1"]])
def test_resume_with_another_recipe_is_refused(interrupted, tiny_data, capsys, change):
    before = snapshot(interrupted)
    argv = pretrain_argv(tiny_data[0], interrupted, *change, epochs=2)
    msg = assert_one_line_exit_2(pretrain, argv, capsys, "other settings")
    assert change[0] in msg
    assert snapshot(interrupted) == before


def test_resume_with_only_other_workers_is_allowed(interrupted, tiny_data):
    """--workers and --device do not change what is computed: the run resumes and finishes."""
    argv = pretrain_argv(tiny_data[0], interrupted, epochs=2)
    argv[argv.index("--workers") + 1] = "1"
    run_main(pretrain, argv)
    assert os.path.isfile(os.path.join(interrupted, "encoder.pt"))


def test_finished_run_with_another_recipe_is_refused(finished, tiny_data, capsys):
    before = snapshot(finished)
    code, err = exit_in_process(pretrain, pretrain_argv(tiny_data[0], finished, "--tau", "0.1"), capsys)
    assert snapshot(finished) == before
    assert code == 2 and len(err) == 1 and "--tau" in err[0]


def test_truncated_checkpoint_in_run_dir(interrupted, tiny_data, capsys):
    ckpt = os.path.join(interrupted, "checkpoint.pt")
    data = Path(ckpt).read_bytes()
    Path(ckpt).write_bytes(data[:len(data) // 3])
    before = snapshot(interrupted)
    msg = assert_one_line_exit_2(pretrain, pretrain_argv(tiny_data[0], interrupted, epochs=2), capsys,
                                 "checkpoint.pt")
    assert msg.endswith(common.RESUME_ADVICE)  # what to do about it
    assert snapshot(interrupted) == before  # nothing deleted or rewritten on the user's behalf
    assert not os.path.exists(os.path.join(interrupted, "encoder.pt"))


def test_checkpoint_that_does_not_fit_the_run(interrupted, tiny_data, capsys):
    """A readable checkpoint.pt with an entry missing (e.g. from an older version of the code)."""
    ckpt = os.path.join(interrupted, "checkpoint.pt")
    state = torch.load(ckpt, weights_only=False)
    del state["scaler"]
    torch.save(state, ckpt)
    msg = assert_one_line_exit_2(pretrain, pretrain_argv(tiny_data[0], interrupted, epochs=2), capsys,
                                 "does not fit this run", "scaler")
    assert msg.endswith(common.RESUME_ADVICE)
    assert not os.path.exists(os.path.join(interrupted, "encoder.pt"))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n"])
def test_corrupt_supervised_checkpoint(content, tiny_data, tmp_path, capsys):
    out = tmp_path / "sup"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(content)
    argv = ["--data-dir", tiny_data[0], *CPU, "--encoder", "convnet", "--epochs", "1", "--bs", "16",
            "--out-dir", str(out)]
    msg = assert_one_line_exit_2(supervised_baseline, argv, capsys, str(out / "checkpoint.pt"))
    assert msg.endswith(common.RESUME_ADVICE)
    assert sorted(os.listdir(out)) == ["checkpoint.pt"] and (out / "checkpoint.pt").read_bytes() == content


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_data, tmp_path, capsys, monkeypatch):
    import methods
    real = methods.SimCLR.forward
    calls = []

    def forward(self, x1, x2, idx=None):  # the loss blows up in the first step of epoch 2
        value, stats = real(self, x1, x2, idx)
        calls.append(1)
        return (value * float("nan") if len(calls) > 80 // 16 else value), stats
    monkeypatch.setattr(methods.SimCLR, "forward", forward)
    out = str(tmp_path / "nan")
    msg = assert_one_line_exit_2(pretrain, pretrain_argv(tiny_data[0], out, epochs=2), capsys, "nan", "--lr")
    assert "epoch 2" in msg
    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=False)
    assert ckpt["epoch"] == 1
    assert len(Path(out, "metrics.jsonl").read_text().splitlines()) == 1
    assert not os.path.exists(os.path.join(out, "encoder.pt"))


# ---------------------------------------------------------------------------- unwritable run directory

def _unwritable(tmp_path, how):
    if how == "under_a_file":  # a folder that cannot be made: its parent is a file
        (tmp_path / "a_file").write_text("")
        return str(tmp_path / "a_file" / "run"), "is a file"
    return "/proc/no_such_folder/run", "cannot write to /proc/no_such_folder/run"  # not writable, even for root


@pytest.mark.parametrize("how", ["under_a_file", "proc"])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_unwritable_out_dir_is_refused_before_any_work(script, how, finished, tiny_data, tmp_path, capsys,
                                                       monkeypatch):
    """One line naming the folder and --out-dir, before the data is even loaded."""
    def no_work(args):
        raise AssertionError("data loaded before the run directory was checked")
    monkeypatch.setattr(common, "load_data", no_work)
    out, needle = _unwritable(tmp_path, how)
    argv = {"pretrain": pretrain_argv(tiny_data[0], out),
            "linear_eval": ["--data-dir", tiny_data[0], *CPU, "--ckpt", finished, "--epochs", "1", "--out-dir", out],
            "supervised_baseline": ["--data-dir", tiny_data[0], *CPU, "--encoder", "convnet", "--epochs", "1",
                                    "--out-dir", out]}[script]
    assert_one_line_exit_2(SCRIPTS[script], argv, capsys, needle, "--out-dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only folder")
def test_linear_eval_of_a_read_only_run_is_refused_before_the_features(finished, tiny_data, tmp_path, capsys,
                                                                       monkeypatch):
    run = tmp_path / "ro"
    shutil.copytree(finished, run)
    os.remove(run / "linear_eval.json")
    run.chmod(0o555)
    monkeypatch.setattr(common, "load_data", lambda args: (_ for _ in ()).throw(AssertionError("data loaded")))
    try:
        assert_one_line_exit_2(linear_eval, ["--data-dir", tiny_data[0], *CPU, "--ckpt", str(run), "--epochs", "1"],
                               capsys, f"cannot write to {run}", "--out-dir")
    finally:
        run.chmod(0o755)


def test_check_writable_leaves_nothing_behind(tmp_path):
    common.check_writable(str(tmp_path / "new" / "run"))
    common.check_writable(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_state_dict_that_does_not_fit_says_what_is_missing_and_unexpected(finished, tiny_data, tmp_path, capsys):
    """One line naming the keys, not torch's first line 'Error(s) in loading state_dict for ...:'."""
    state = torch.load(os.path.join(finished, "encoder.pt"), weights_only=False)
    weights = state["state_dict"]
    first = next(iter(weights))
    weights["extra.weight"] = weights.pop(first)
    path = tmp_path / "encoder.pt"
    torch.save(state, path)
    msg = assert_one_line_exit_2(linear_eval, ["--data-dir", tiny_data[0], *CPU, "--ckpt", str(path), "--epochs", "1",
                                               "--out-dir", str(tmp_path / "eval")], capsys, "does not fit a convnet")
    assert f"missing keys: {first}" in msg and "unexpected keys: extra.weight" in msg
    assert not msg.rstrip().endswith(":")


def test_state_dict_error_keeps_one_line_for_many_keys():
    e = RuntimeError('Error(s) in loading state_dict for ResNet:\n\tMissing key(s) in state_dict: "a", "b", "c", '
                     '"d", "e". \n\tsize mismatch for fc.weight: copying a param with shape torch.Size([10, 4]) from '
                     'checkpoint, the shape in current model is torch.Size([10, 8]).')
    text = common.state_dict_error(e)
    assert "\n" not in text and text.startswith("missing keys: a, b, c (+2 more); size mismatch for fc.weight")


# ---------------------------------------------------------------------------- Ctrl-C

@pytest.mark.parametrize("after_steps,kept", [(2, "nothing was saved to resume from"),
                                              (7, "checkpoint.pt holds the last finished epoch")])
def test_ctrl_c_says_truthfully_what_was_kept(after_steps, kept, tiny_data, tmp_path, capsys, monkeypatch):
    """Interrupted in the first epoch (5 steps an epoch) there is nothing to resume; in the
    second, checkpoint.pt holds the first."""
    real, calls = common.ssl_step, []

    def step(*a, **k):
        calls.append(1)
        if len(calls) > after_steps:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(common, "ssl_step", step)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        common.run_cli(pretrain.main, pretrain.build_parser(), pretrain_argv(tiny_data[0], str(tmp_path / "r"), epochs=2))
    err = lines(capsys.readouterr().err)
    assert e.value.code == 130 and len(err) == 1 and kept in err[0], err
