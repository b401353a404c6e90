"""Tests for dataloader.py: both on-disk layouts (written here, nothing downloaded), the decoded
cache, stratified subsets, the datasets, and the errors for data that is missing or broken.

    python -m pytest -q tests/test_dataloader.py
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image

import augment
import dataloader
from conftest import fake_cifar, write_batches, write_image_folder

CLASSES = list(dataloader.CLASSES)


@pytest.fixture(scope="module")
def arrays():
    return fake_cifar(3, 2, seed=1)  # 30 train, 20 test


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything tries the network."""
    def refuse(*a, **k):
        raise AssertionError("tried to download")
    monkeypatch.setattr(dataloader, "_download", refuse)


def _check_arrays(loaded, expected):
    x_train, y_train, x_test, y_test = loaded
    for got, want in zip(loaded, expected):
        assert got.shape == want.shape
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert x_train.shape[1:] == (32, 32, 3)
    for got, want in zip(loaded, expected):
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- layouts

def test_batches_layout_loads(tmp_path, arrays, no_download):
    root = write_batches(str(tmp_path), *arrays)
    assert dataloader.find_layout(root) == "batches"
    _check_arrays(dataloader.load_cifar10(root, download=False), arrays)


def test_batches_layout_loads_with_download_true_without_network(tmp_path, arrays, no_download):
    root = write_batches(str(tmp_path), *arrays)
    _check_arrays(dataloader.load_cifar10(root), arrays)


def test_session_fixture_loads(tiny_data, no_download):
    root, expected = tiny_data
    loaded = dataloader.load_cifar10(root, download=False)
    _check_arrays(loaded, expected)
    assert len(loaded[0]) == 80 and len(loaded[2]) == 40


def test_png_folder_loads_and_equals_batches(tmp_path, arrays, no_download):
    png = write_image_folder(str(tmp_path / "png"), *arrays)
    bat = write_batches(str(tmp_path / "bat"), *arrays)
    assert dataloader.find_layout(png) == "images"
    from_png = dataloader.load_cifar10(png, download=False)
    from_batches = dataloader.load_cifar10(bat, download=False)
    _check_arrays(from_png, arrays)
    for a, b in zip(from_png, from_batches):
        np.testing.assert_array_equal(a, b)


def test_jpeg_folder_loads(tmp_path, arrays, no_download):
    root = write_image_folder(str(tmp_path), *arrays, ext="jpg")
    x_train, y_train, x_test, y_test = dataloader.load_cifar10(root, download=False)
    assert x_train.shape == arrays[0].shape and x_train.dtype == np.uint8
    np.testing.assert_array_equal(y_train, arrays[1])
    np.testing.assert_array_equal(y_test, arrays[3])
    # lossy on these noise images, but the same pictures in the same order: each decoded image
    # has its original's mean colour and is nearer to its original than to any other image
    for got, want in ((x_train, arrays[0]), (x_test, arrays[2])):
        got, want = got.reshape(len(got), -1).astype(float), want.reshape(len(want), -1).astype(float)
        assert np.abs(got.mean(1) - want.mean(1)).max() < 5
        dist = ((got[:, None] - want[None]) ** 2).sum(-1)  # (N, N)
        assert (dist.argmin(1) == np.arange(len(got))).all()


def test_label_order_is_sorted_class_folders(tmp_path, no_download):
    """Labels come from the sorted folder names, not from the order the files were written in."""
    colours = {"zebra": 200, "apple": 10, "mango": 100}
    for split in ("train", "test"):
        for name, value in colours.items():
            d = tmp_path / split / name
            d.mkdir(parents=True)
            for k in range(2):
                Image.fromarray(np.full((32, 32, 3), value + k, np.uint8)).save(d / f"{k}.png")
    (tmp_path / "train" / "zebra" / "notes.txt").write_text("not an image")  # ignored
    x_train, y_train, x_test, y_test = dataloader.load_cifar10(str(tmp_path), download=False)
    assert y_train.tolist() == [0, 0, 1, 1, 2, 2]
    assert x_train[:, 0, 0, 0].tolist() == [10, 11, 100, 101, 200, 201]  # apple, mango, zebra
    assert y_test.tolist() == [0, 0, 1, 1, 2, 2]


def test_to_tensor_batch_is_channels_first():
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    t = dataloader.to_tensor_batch(x)
    assert t.shape == (3, 3, 32, 32) and t.dtype == torch.uint8 and t.is_contiguous()
    assert torch.equal(t[1, 2], torch.from_numpy(x[1, :, :, 2]))


# ---------------------------------------------------------------------------- the cache

def test_cache_is_written_and_reused(tmp_path, arrays, monkeypatch, no_download):
    root = write_image_folder(str(tmp_path), *arrays)
    first = dataloader.load_cifar10(root, download=False)
    cache = os.path.join(root, dataloader.CACHE_NAME)
    assert os.path.isfile(cache)
    assert not [f for f in os.listdir(root) if ".tmp" in f]

    def no_decode(*a, **k):
        raise AssertionError("decoded again although the cache is valid")
    monkeypatch.setattr(dataloader, "_decode", no_decode)
    second = dataloader.load_cifar10(root, download=False)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_cache_invalidated_when_file_count_changes(tmp_path, arrays, monkeypatch, no_download):
    root = write_image_folder(str(tmp_path), *arrays)
    first = dataloader.load_cifar10(root, download=False)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(os.path.join(root, "train", "bird", "extra.png"))
    calls = []
    real = dataloader._decode
    monkeypatch.setattr(dataloader, "_decode", lambda *a: calls.append(1) or real(*a))
    x_train, y_train, _, _ = dataloader.load_cifar10(root, download=False)
    assert calls, "the stale cache was used"
    assert len(x_train) == len(first[0]) + 1
    assert (y_train == CLASSES.index("bird")).sum() == (first[1] == CLASSES.index("bird")).sum() + 1
    # and the rewritten cache now holds the new count
    monkeypatch.setattr(dataloader, "_decode", lambda *a: pytest.fail("decoded a third time"))
    assert len(dataloader.load_cifar10(root, download=False)[0]) == len(x_train)


def test_decoding_says_what_it_does_and_how_long_it_took(tmp_path, arrays, capsys, no_download):
    """The first load of an image folder decodes every file (about 25 s for CIFAR-10): not in silence."""
    root = write_image_folder(str(tmp_path), *arrays, ext="jpg")
    dataloader.load_cifar10(root, download=False)
    cache = os.path.join(root, dataloader.CACHE_NAME)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"decoding 50 images from {root} (once; cached in {cache})"
    assert lines[1].startswith("decoded 50 images in ") and lines[1].endswith(f" s; wrote {cache}")
    dataloader.load_cifar10(root, download=False)  # from the cache: quick, nothing to say
    assert capsys.readouterr().out == ""


def test_broken_cache_is_not_a_traceback(tmp_path, arrays, no_download):
    """A cache file that cannot be read (e.g. a copy cut short) is decoded again or refused with
    DataError, never an unexplained crash."""
    root = write_image_folder(str(tmp_path), *arrays)
    dataloader.load_cifar10(root, download=False)
    cache = os.path.join(root, dataloader.CACHE_NAME)
    with open(cache, "r+b") as f:
        f.truncate(os.path.getsize(cache) // 2)
    try:
        loaded = dataloader.load_cifar10(root, download=False)
    except dataloader.DataError:
        return
    _check_arrays(loaded, arrays)


# ---------------------------------------------------------------------------- stratified_subset

LABELS_50 = np.repeat(np.arange(10), 50)


def test_stratified_subset_ten_percent():
    idx = dataloader.stratified_subset(LABELS_50, 0.1, seed=0)
    assert len(idx) == 50
    assert np.bincount(LABELS_50[idx], minlength=10).tolist() == [5] * 10
    assert np.all(np.diff(idx) > 0)  # sorted, no duplicates
    assert idx.min() >= 0 and idx.max() < len(LABELS_50)


def test_stratified_subset_is_seeded():
    a = dataloader.stratified_subset(LABELS_50, 0.1, seed=0)
    b = dataloader.stratified_subset(LABELS_50, 0.1, seed=0)
    c = dataloader.stratified_subset(LABELS_50, 0.1, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(LABELS_50[c], minlength=10).tolist() == [5] * 10


def test_stratified_subset_full_and_minimum():
    np.testing.assert_array_equal(dataloader.stratified_subset(LABELS_50, 1.0, seed=3), np.arange(500))
    tiny = dataloader.stratified_subset(LABELS_50, 0.001, seed=0)
    assert np.bincount(LABELS_50[tiny], minlength=10).tolist() == [1] * 10


def test_stratified_subset_shuffled_and_unbalanced_labels():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(3), [40, 20, 10]))
    idx = dataloader.stratified_subset(labels, 0.5, seed=0)
    assert np.bincount(labels[idx], minlength=3).tolist() == [20, 10, 5]


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_stratified_subset_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError):
        dataloader.stratified_subset(LABELS_50, fraction)


# ---------------------------------------------------------------------------- datasets

def test_two_view_dataset_yields_two_different_views(arrays):
    torch.manual_seed(0)
    ds = dataloader.TwoViewDataset(arrays[0], augment.get_preset("simclr"))
    assert len(ds) == len(arrays[0])
    for i in range(3):
        v1, v2, index = ds[i]
        assert index == i
        assert v1.shape == v2.shape == (3, 32, 32)
        assert v1.dtype == torch.float32
        assert not torch.equal(v1, v2)


def test_two_view_dataset_views_come_from_the_item():
    """With the identity transform both views are the image itself."""
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    ds = dataloader.TwoViewDataset(x, augment.get_preset("none", normalize=False))
    v1, v2, index = ds[2]
    assert index == 2
    expected = torch.from_numpy(x[2]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(v1, expected)
    torch.testing.assert_close(v2, expected)


# ---------------------------------------------------------------------------- errors

def test_missing_data_without_download_names_both_layouts(tmp_path, no_download):
    with pytest.raises(dataloader.DataError) as e:
        dataloader.load_cifar10(str(tmp_path / "nothing"), download=False)
    msg = str(e.value)
    assert "cifar-10-batches-py" in msg and "train/" in msg and "test/" in msg
    assert "--no-download" in msg and "\n" not in msg
    assert not (tmp_path / "nothing").exists()  # nothing created either


def test_missing_data_message_names_every_image_type(tmp_path, no_download):
    with pytest.raises(dataloader.DataError) as e:
        dataloader.load_cifar10(str(tmp_path / "nothing"), download=False)
    assert "train/<class>/*.{png|jpg|jpeg|bmp}" in str(e.value)


def test_data_dir_one_level_above_an_image_folder_is_named_not_downloaded(tmp_path, arrays, no_download):
    write_image_folder(str(tmp_path / "data" / "cifar10-jpg"), *arrays, ext="jpg")
    (tmp_path / "data" / "notes").mkdir()  # another folder beside it is not a candidate
    found = str(tmp_path / "data" / "cifar10-jpg")
    with pytest.raises(dataloader.DataError) as e:
        dataloader.load_cifar10(str(tmp_path / "data"), download=True)
    assert str(e.value) == f"found CIFAR-10 in {found}: use --data-dir {found}"
    assert sorted(os.listdir(tmp_path / "data")) == ["cifar10-jpg", "notes"]  # nothing downloaded or created


def test_data_dir_one_level_above_the_batches_is_named(tmp_path, arrays, no_download):
    write_batches(str(tmp_path / "data" / "foo"), *arrays)
    found = str(tmp_path / "data" / "foo")
    with pytest.raises(dataloader.DataError, match=f"use --data-dir {found}$"):
        dataloader.load_cifar10(str(tmp_path / "data"))


def test_data_dir_inside_the_batches_folder_names_its_parent(tmp_path, arrays, no_download):
    write_batches(str(tmp_path), *arrays)
    with pytest.raises(dataloader.DataError, match=f"use --data-dir {tmp_path}$"):
        dataloader.load_cifar10(str(tmp_path / "cifar-10-batches-py"))


def test_two_copies_one_level_down_are_both_named(tmp_path, arrays, no_download):
    write_batches(str(tmp_path / "a"), *arrays)
    write_image_folder(str(tmp_path / "b"), *arrays)
    with pytest.raises(dataloader.DataError) as e:
        dataloader.load_cifar10(str(tmp_path))
    assert str(tmp_path / "a") in str(e.value) and str(tmp_path / "b") in str(e.value)
    assert "one of them" in str(e.value)


def test_download_says_so(tmp_path, monkeypatch, capsys):
    import torchvision.datasets.utils as tv_utils
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", lambda *a, **k: None)  # "downloaded" nothing
    with pytest.raises(dataloader.DataError, match="after downloading"):
        dataloader.load_cifar10(str(tmp_path / "d"), download=True)
    out = capsys.readouterr().out
    assert "downloading " + dataloader.CIFAR10_URL in out and str(tmp_path / "d") in out


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(dataloader.DataError, match="could not download.*cifar-10-batches-py"):
        dataloader.load_cifar10(str(tmp_path / "d"), download=True)


def test_image_folder_without_images(tmp_path, no_download):
    for split in ("train", "test"):
        (tmp_path / split / "airplane").mkdir(parents=True)
    with pytest.raises(dataloader.DataError, match="no class folders with images"):
        dataloader.load_cifar10(str(tmp_path), download=False)


def test_image_folder_without_class_folders(tmp_path, no_download):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(dataloader.DataError):
        dataloader.load_cifar10(str(tmp_path), download=False)


def test_class_missing_from_test(tmp_path, arrays, no_download):
    root = write_image_folder(str(tmp_path), *arrays)
    test_cat = os.path.join(root, "test", "cat")
    for f in os.listdir(test_cat):
        os.remove(os.path.join(test_cat, f))
    os.rmdir(test_cat)
    with pytest.raises(dataloader.DataError, match="cat"):
        dataloader.load_cifar10(root, download=False)


def test_class_without_training_images(tmp_path, arrays, no_download):
    root = write_image_folder(str(tmp_path), *arrays)
    d = os.path.join(root, "train", "dog")
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    with pytest.raises(dataloader.DataError, match="dog"):
        dataloader.load_cifar10(root, download=False)


def test_wrong_image_size(tmp_path, arrays, no_download):
    root = write_image_folder(str(tmp_path), *arrays)
    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(os.path.join(root, "train", "cat", "big.png"))
    with pytest.raises(dataloader.DataError, match="48x64"):
        dataloader.load_cifar10(root, download=False)


def test_undecodable_image(tmp_path, arrays, no_download):
    root = write_image_folder(str(tmp_path), *arrays)
    with open(os.path.join(root, "train", "cat", "broken.png"), "wb") as f:
        f.write(b"this is not a png")
    with pytest.raises(dataloader.DataError, match="broken.png"):
        dataloader.load_cifar10(root, download=False)


def test_truncated_batch_file(tmp_path, arrays, no_download):
    root = write_batches(str(tmp_path), *arrays)
    path = os.path.join(root, "cifar-10-batches-py", "data_batch_3")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(dataloader.DataError, match="data_batch_3"):
        dataloader.load_cifar10(root, download=False)


def test_missing_batch_file(tmp_path, arrays, no_download):
    root = write_batches(str(tmp_path), *arrays)
    os.remove(os.path.join(root, "cifar-10-batches-py", "test_batch"))
    with pytest.raises(dataloader.DataError, match="test_batch"):
        dataloader.load_cifar10(root, download=False)


def test_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    """A download cut off half-way (no network, full disk): no empty data folder, no partial archive."""
    import torchvision.datasets.utils as tv_utils

    def cut_off(url, download_root, md5=None):
        with open(os.path.join(download_root, os.path.basename(url)), "wb") as f:
            f.write(b"half an archive")
        os.makedirs(os.path.join(download_root, dataloader.BATCHES_DIR))
        raise OSError("connection reset")
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", cut_off)
    data = tmp_path / "data"
    with pytest.raises(dataloader.DataError, match="could not download"):
        dataloader.load_cifar10(str(data), download=True)
    assert not data.exists()
    kept = tmp_path / "mine"  # a folder that already held something keeps it, and only it
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(dataloader.DataError):
        dataloader.load_cifar10(str(kept), download=True)
    assert os.listdir(kept) == ["notes.txt"]
