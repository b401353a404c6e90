"""Shared fixtures: tiny CIFAR-10 folders in both on-disk layouts, written by the tests themselves
(nothing is downloaded), and a helper to run a script's main() with command-line flags."""
import os
import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

torch.set_num_threads(min(2, torch.get_num_threads()))


def fake_cifar(n_per_class_train, n_per_class_test, seed=0):
    """Random images with a class-dependent colour, so a classifier has something to learn."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = np.repeat(np.arange(10), n)
        base = rng.integers(0, 256, size=(10, 1, 1, 3))
        x = np.clip(base[y] + rng.normal(0, 40, size=(len(y), 32, 32, 3)), 0, 255).astype(np.uint8)
        return x, y

    return split(n_per_class_train) + split(n_per_class_test)


def write_batches(root, x_train, y_train, x_test, y_test):
    """The official python layout: root/cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)

    def dump(name, x, y):
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), "labels": list(map(int, y))}, f)

    for i, part in enumerate(np.array_split(np.arange(len(x_train)), 5)):
        dump(f"data_batch_{i + 1}", x_train[part], y_train[part])
    dump("test_batch", x_test, y_test)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]}, f)
    return root


def write_image_folder(root, x_train, y_train, x_test, y_test, ext="png"):
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        for k, (img, label) in enumerate(zip(x, y)):
            d = os.path.join(root, split, classes[label])
            os.makedirs(d, exist_ok=True)
            Image.fromarray(img).save(os.path.join(d, f"{k:04d}.{ext}"))
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A 'batches' layout folder with 8 training and 4 test images per class (80 + 40)."""
    arrays = fake_cifar(8, 4)
    return write_batches(str(tmp_path_factory.mktemp("cifar")), *arrays), arrays


def run_main(module, argv):
    """Parse argv with the script's own parser and call its main(), as the command line would."""
    return module.main(module.build_parser().parse_args(argv))


@pytest.fixture
def drawn(monkeypatch):
    """Every matplotlib figure the report draws (figures.py), kept open instead of closed: [figure, ...]
    (the report's tests read what a figure draws)."""
    import figures
    plt = figures.pyplot()
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    yield kept
    monkeypatch.undo()
    for fig in kept:
        plt.close(fig)


# End-to-end tests of files kept by others that build a whole report from records (a minute or
# more each on two cores), marked slow here so that the default run stays fast; the full suite
# (-m "slow or not slow", .ci/run) runs them. The marker belongs in their files, where it can move.
SLOW_ELSEWHERE = {
    "tests/test_report_rebuild.py::test_committed_report_rebuilds",
    "tests/test_report_rebuild.py::test_output_depends_on_the_records_only",
    "tests/test_report_figures.py::test_the_report_text_is_the_same_from_copies_of_the_records",
}


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)
