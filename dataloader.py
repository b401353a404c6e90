"""CIFAR-10 from disk to uint8 arrays, stratified subsets, and the datasets the scripts train on.

    >>> import dataloader
    >>> x_train, y_train, x_test, y_test = dataloader.load_cifar10("data")   # doctest: +SKIP
    >>> x_train.shape, x_train.dtype                                           # doctest: +SKIP
    ((50000, 32, 32, 3), dtype('uint8'))
    >>> labels = [c for c in range(10) for _ in range(5000)]   # like y_train: 5,000 per class
    >>> len(dataloader.stratified_subset(labels, fraction=0.1, seed=0))   # 500 per class
    5000

`data_dir` may hold either of two layouts:
  1. the official python version, `data_dir/cifar-10-batches-py/` (`data_batch_1` .. `_5`,
     `test_batch`, `batches.meta`), downloaded from the official site when absent;
  2. an image folder, `data_dir/train/<class>/*.png|jpg` and `data_dir/test/<class>/*`, with the
     class folders in sorted order giving the labels (CIFAR-10's label order is alphabetical).
The official batches are read here with pickle rather than with torchvision's `CIFAR10` class,
which checks md5 sums and so refuses any other folder in that layout (a test fixture, a copy).
Decoding 60,000 image files takes a while, so the decoded arrays are cached next to them in
`cifar10_uint8.npz` when that folder is writable. Loading says what it does when it takes long
(decoding, downloading); it prints nothing at import.
"""
import os
import pickle
import time
import zipfile

import numpy as np
from PIL import Image
import torch
from torch.utils.data import Dataset

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES_DIR = "cifar-10-batches-py"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
CACHE_NAME = "cifar10_uint8.npz"
CIFAR10_TRAIN_PER_CLASS = 5000


class DataError(Exception):
    """The data cannot be found or read; the message says what to do. Scripts turn it into a
    one-line error and exit status 2."""


def _say(text):
    """A progress line on stdout, flushed at once so that a log shows it while the work goes on."""
    print(text, flush=True)


def _read_batches(folder, names):
    """Official python batches -> uint8 (N, 32, 32, 3), int64 (N,)."""
    xs, ys = [], []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch["labels"], dtype=np.int64))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
            raise DataError(f"cannot read CIFAR-10 batch {path}: {e}") from None
    # (N, 3, 32, 32) -> (N, 32, 32, 3), the layout of torchvision's CIFAR10.data
    return np.concatenate(xs).transpose(0, 2, 3, 1).copy(), np.concatenate(ys)


def _load_batches(folder):
    x_train, y_train = _read_batches(folder, [f"data_batch_{i}" for i in range(1, 6)])
    x_test, y_test = _read_batches(folder, ["test_batch"])
    return x_train, y_train, x_test, y_test


def _list_images(split_dir):
    """{class name: sorted image paths} of one split of the image-folder layout."""
    classes = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
    return {c: sorted(os.path.join(split_dir, c, f) for f in os.listdir(os.path.join(split_dir, c))
                      if f.lower().endswith(IMAGE_EXTENSIONS)) for c in classes}


def _decode(files_by_class, classes):
    paths = [p for c in classes for p in files_by_class[c]]
    labels = np.array([i for i, c in enumerate(classes) for _ in files_by_class[c]], dtype=np.int64)
    images = np.empty((len(paths), 32, 32, 3), dtype=np.uint8)
    for k, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if im.size != (32, 32):
                    raise DataError(f"{p} is {im.size[0]}x{im.size[1]} pixels, CIFAR-10 images are 32x32")
                images[k] = np.asarray(im)
        except OSError as e:
            raise DataError(f"cannot decode image {p}: {e}") from None
    return images, labels


def _load_image_folder(data_dir):
    train = _list_images(os.path.join(data_dir, "train"))
    test = _list_images(os.path.join(data_dir, "test"))
    classes = sorted(train)
    if not classes or not any(train.values()):
        raise DataError(f"{data_dir}/train has no class folders with images ({', '.join(IMAGE_EXTENSIONS)})")
    missing = [c for c in classes if not test.get(c)]
    if missing:
        raise DataError(f"{data_dir}/test has no images for class(es) {', '.join(missing)} found in train/")
    empty = [c for c in classes if not train[c]]
    if empty:
        raise DataError(f"{data_dir}/train has no images for class(es) {', '.join(empty)}")
    counts = np.array([len(train[c]) for c in classes] + [len(test[c]) for c in classes])

    cache = os.path.join(data_dir, CACHE_NAME)
    if os.path.exists(cache):
        try:
            with np.load(cache) as z:
                if np.array_equal(z["counts"], counts):  # as many images per class as when it was written
                    return z["x_train"], z["y_train"], z["x_test"], z["y_test"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            pass  # a damaged cache: decode the images again and rewrite it
    _say(f"decoding {counts.sum():,} images from {data_dir} (once; cached in {cache})")
    t0 = time.monotonic()
    x_train, y_train = _decode(train, classes)
    x_test, y_test = _decode(test, classes)
    try:  # write-then-rename, so an interrupted write never leaves a broken cache
        tmp = f"{cache}.{os.getpid()}.tmp.npz"  # this process's own: ranks or jobs may decode at once
        np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, counts=counts)
        os.replace(tmp, cache)
        done = f"wrote {cache}"
    except OSError as e:  # a read-only data folder: decode again next time
        done = f"could not write {cache} ({e.strerror or e}): the next run decodes again"
    _say(f"decoded {counts.sum():,} images in {time.monotonic() - t0:.0f} s; {done}")
    return x_train, y_train, x_test, y_test


def _download(data_dir):
    from torchvision.datasets.utils import download_and_extract_archive
    _say(f"no CIFAR-10 in {data_dir}: downloading {CIFAR10_URL} (163 MB) into it "
         "(--no-download forbids this)")
    try:
        download_and_extract_archive(CIFAR10_URL, download_root=data_dir, md5=CIFAR10_MD5)
    except Exception as e:  # no network, a proxy, a full disk: all end in the same advice
        _remove_partial_download(data_dir)
        raise DataError(f"could not download CIFAR-10 into {data_dir} ({type(e).__name__}: {e}). "
                        + _layout_help(data_dir)) from None


def _remove_partial_download(data_dir):
    """Leave nothing half-made: the partial archive, a half-extracted folder, and data_dir itself
    when that leaves it empty (load_cifar10 made it for the download)."""
    import shutil
    archive = os.path.join(data_dir, os.path.basename(CIFAR10_URL))
    if os.path.isfile(archive):
        os.remove(archive)
    shutil.rmtree(os.path.join(data_dir, BATCHES_DIR), ignore_errors=True)
    try:
        os.rmdir(data_dir)  # only if empty: a folder that held anything else stays
    except OSError:
        pass


def _layout_help(data_dir):
    kinds = "|".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
    return (f"Put CIFAR-10 in {data_dir}/ as either the official python version "
            f"({BATCHES_DIR}/ from {CIFAR10_URL}) or image folders train/<class>/*.{{{kinds}}} and "
            f"test/<class>/*.{{{kinds}}}")


def find_layout(data_dir):
    """'batches' or 'images' (the layout found in data_dir), or None."""
    if os.path.isfile(os.path.join(data_dir, BATCHES_DIR, "data_batch_1")):
        return "batches"
    if os.path.isdir(os.path.join(data_dir, "train")) and os.path.isdir(os.path.join(data_dir, "test")):
        return "images"
    return None


def _misplaced(data_dir):
    """When data_dir holds no layout but is one level off a folder that does (its parent, or one
    of its sub-folders: `--data-dir data` for data/cifar10-jpg/train/...), the advice naming that
    folder, else None. Said instead of downloading 163 MB next to data the user already has."""
    if os.path.isfile(os.path.join(data_dir, "data_batch_1")):  # the batches folder itself
        parent = os.path.dirname(os.path.abspath(data_dir))
        return f"{data_dir} is the {BATCHES_DIR} folder itself: use --data-dir {parent}"
    if not os.path.isdir(data_dir):
        return None
    found = [os.path.join(data_dir, d) for d in sorted(os.listdir(data_dir))
             if os.path.isdir(os.path.join(data_dir, d)) and find_layout(os.path.join(data_dir, d))]
    if len(found) == 1:
        return f"found CIFAR-10 in {found[0]}: use --data-dir {found[0]}"
    if found:
        return f"found CIFAR-10 in {', '.join(found)}: use --data-dir with one of them"
    return None


def load_cifar10(data_dir="data", download=True):
    """Return (x_train, y_train, x_test, y_test): uint8 (N, 32, 32, 3) images, int64 labels.

    Looks for either layout in `data_dir`; when neither is there, refuses if a folder one level
    off holds one (DataError naming it), else downloads the official archive (unless
    download=False). Raises DataError with advice when it cannot.
    """
    layout = find_layout(data_dir)
    if layout is None:
        advice = _misplaced(data_dir)
        if advice:
            raise DataError(advice)
    if layout is None and download:
        os.makedirs(data_dir, exist_ok=True)
        _download(data_dir)
        layout = find_layout(data_dir)
    if layout == "batches":
        return _load_batches(os.path.join(data_dir, BATCHES_DIR))
    if layout == "images":
        return _load_image_folder(data_dir)
    why = "after downloading" if download else "and downloading is off (--no-download)"
    raise DataError(f"no CIFAR-10 found in {data_dir} {why}. "
                    + _layout_help(data_dir))


def stratified_subset(labels, fraction, seed=0):
    """Sorted indices of a seeded subset with `fraction` of each class (at least one image each).

    10% of CIFAR-10's training split is 500 images per class, as in the assignment.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = max(1, int(round(fraction * len(idx))))
        keep.append(rng.permutation(idx)[:n])
    return np.sort(np.concatenate(keep))


def to_tensor_batch(images):
    """uint8 (N, 32, 32, 3) numpy -> uint8 (N, 3, 32, 32) torch, for augmentation on the device."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


class TwoViewDataset(Dataset):
    """Each item is two independently augmented views (t(x), t'(x)) of one image x
    (Algorithm 1: "draw two augmentation functions t ~ T, t' ~ T"), and the image's index."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = Image.fromarray(self.images[i])
        return self.transform(image), self.transform(image), i
