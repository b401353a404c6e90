"""The command line of the three scripts, without torch: the flags they share (one parent
parser), the checked types of their values, and the names their choices take. A script builds its
parser from this module alone, so that `-h` and a mistyped flag answer before torch is imported
(seconds on a small machine).

The choices repeat names that live beside their code (models.ENCODERS, models.HEADS,
methods.METHODS, methods.DEFAULT_TAU, augment.PRESETS, augment.CROP_SCALE), which import torch; tests/test_cli.py
checks that the two agree.

Nothing here imports torch, parses arguments or prints at import.
"""
import argparse
import math
import os

ENCODERS = ("resnet18", "resnet34", "resnet50", "convnet", "quicknet")
HEADS = ("bn", "nobn", "none")
METHODS = ("simclr", "moco", "byol")
DEFAULT_TAU = {"simclr": 0.5, "moco": 0.2, "byol": None}
AUG_PRESETS = ("simclr", "simclr_blur", "crop", "crop_flip", "crop_color", "color", "no_crop", "none")
CROP_MIN = 0.08  # the lower bound of augment.CROP_SCALE: SimCLR's (and torchvision's) smallest crop

# The supervised recipe (lr per 256 images, weight decay): supervised_baseline.py and
# linear_eval.py --finetune share it, with the same epochs and augmentation, so that the label
# study's two fully trained classifiers differ in their initialisation only.
SUPERVISED_LR, SUPERVISED_WD = 0.1, 5e-4


def _checked(cast, ok, what):
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    return parse


positive_float = _checked(float, lambda v: v > 0 and math.isfinite(v), "a number > 0")
nonneg_float = _checked(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
fraction = _checked(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")
crop_min = _checked(float, lambda v: 0 < v < 1, "an area fraction in (0, 1)")
positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
nonneg_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
batch_size = _checked(int, lambda v: v >= 2, "a batch size >= 2")


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line (the usage text is one `-h` away), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def script_parser(doc, cls=Parser):
    """The parser of a script: its docstring as help, the shared flags as parent."""
    return cls(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                  parents=[parent_parser()])


def parent_parser():
    """The flags every script shares, so their names and meanings cannot drift apart.
    Each script sets its own defaults for --epochs, --bs and --lr with set_defaults()."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("shared")
    g.add_argument("--data-dir", default="data",
                   help="CIFAR-10 folder: cifar-10-batches-py/ or train/<class>/, test/<class>/ "
                        "(default: data; downloaded there when missing)")
    g.add_argument("--no-download", action="store_true", help="never use the network")
    g.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = cuda when available (default: auto)")
    g.add_argument("--epochs", type=positive_int, help="training epochs")
    g.add_argument("--bs", type=batch_size, help="batch size in images")
    g.add_argument("--lr", type=positive_float, help="learning rate per 256 images "
                   "(scaled linearly with --bs)")
    g.add_argument("--workers", type=nonneg_int, default=min(8, os.cpu_count() or 1),
                   help="data-loader processes for the torchvision path (default: min(8, cores))")
    g.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision (autocast; losses stay float32): auto = bf16 on GPUs that have it "
                        "(else fp16) and on CPUs with bf16 instructions (else off) (default: auto)")
    g.add_argument("--out-dir", help="run directory (default: runs/<descriptive name>)")
    g.add_argument("--deterministic", action="store_true",
                   help="CUDA: deterministic cuDNN/cuBLAS kernels and no cudnn.benchmark, so that a resumed run "
                        "equals the uninterrupted one bit for bit on a GPU too (slower; default: off)")
    return p
