"""Data sources through the one CIFAR-10 reader into the canonical file."""

import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

from optimbench import errors, formats
from optimbench.formats import canonical, cifar10
from optimbench.io import sha256


def test_synthetic_archive_has_cifar10_files_and_keys(synthetic_archive):
    with tarfile.open(synthetic_archive, "r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers())
        batch = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_1"), encoding="latin1")
        meta = pickle.load(tar.extractfile("cifar-10-batches-py/batches.meta"), encoding="latin1")
    assert names == sorted(f"cifar-10-batches-py/{n}" for n in
                           ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)])
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (60, 3072)
    assert len(batch["labels"]) == 60 and isinstance(batch["labels"][0], int)
    assert len(meta["label_names"]) == 10


def test_archive_bytes_round_trip_through_the_reader(tmp_path):
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (23, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    y_train, y_test = rng.integers(0, 3, 23), rng.integers(0, 3, 7)
    path = cifar10.write_cifar_archive(tmp_path / "a.tar.gz", x_train, y_train, x_test, y_test, ["a", "b", "c"])
    arrays = cifar10.read_cifar_archive(path)
    np.testing.assert_array_equal(arrays["x_train"], x_train)
    np.testing.assert_array_equal(arrays["y_train"], y_train)
    np.testing.assert_array_equal(arrays["x_test"], x_test)
    np.testing.assert_array_equal(arrays["y_test"], y_test)
    assert list(arrays["classes"]) == ["a", "b", "c"]
    assert arrays["y_train"].dtype == np.int64


def test_reader_uses_cifar10_channel_major_rows(tmp_path):
    """A row holds 1024 red, then 1024 green, then 1024 blue values (CIFAR-10's layout)."""
    image = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    image[0, 0, 1, 0], image[0, 2, 0, 2] = 7, 9  # red at (row 0, col 1); blue at (row 2, col 0)
    path = cifar10.write_cifar_archive(tmp_path / "a.tar.gz", image.repeat(5, 0), np.zeros(5, int), image,
                                    np.zeros(1, int), ["only"])
    with tarfile.open(path) as tar:
        row = pickle.load(tar.extractfile("cifar-10-batches-py/test_batch"), encoding="latin1")["data"][0]
    assert row[1] == 7 and row[2048 + 64] == 9


def test_synthetic_data_is_learnable(synthetic_npz):
    """A linear classifier on raw pixels beats chance (10%) by far: the archive carries signal."""
    from sklearn.linear_model import LogisticRegression

    arrays = canonical.load_canonical(synthetic_npz)
    model = LogisticRegression(max_iter=300).fit(arrays["x_train"].reshape(300, -1) / 255.0, arrays["y_train"])
    assert model.score(arrays["x_test"].reshape(100, -1) / 255.0, arrays["y_test"]) > 0.6


def test_synthetic_archive_is_reproducible(tmp_path):
    a = cifar10.make_synthetic_archive(tmp_path / "a.tar.gz", 50, 20, seed=3)
    b = cifar10.make_synthetic_archive(tmp_path / "b.tar.gz", 50, 20, seed=3)
    c = cifar10.make_synthetic_archive(tmp_path / "c.tar.gz", 50, 20, seed=4)
    assert sha256(a) == sha256(b) != sha256(c)


def test_digits_source_is_the_real_digits_data_set(tmp_path):
    summary = formats.prepare("cifar10", {"source": "digits", "digits": {"test_fraction": 0.25, "seed": 0}},
                              tmp_path / "digits.npz", tmp_path / "digits.json")
    arrays = canonical.load_canonical(tmp_path / "digits.npz")
    assert summary["n_train"] + summary["n_test"] == 1797  # scikit-learn's 1,797 handwritten digits
    assert summary["n_test"] == 449
    assert arrays["x_train"].shape == (1348, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
    assert list(arrays["classes"]) == [str(d) for d in range(10)]
    assert np.array_equal(arrays["x_train"][..., 0], arrays["x_train"][..., 2])  # grey in three channels
    assert arrays["x_train"].max() == 255 and arrays["x_train"].min() == 0
    assert sorted(np.unique(arrays["y_test"])) == list(range(10))
    assert summary["sha256"] == sha256(tmp_path / "digits.npz")


def test_canonical_file_is_reproducible(tmp_path, synthetic_archive):
    spec = {"source": "archive", "archive": str(synthetic_archive)}
    first = formats.prepare("cifar10", spec, tmp_path / "a.npz", tmp_path / "a.json")
    second = formats.prepare("cifar10", spec, tmp_path / "b.npz", tmp_path / "b.json")
    assert first["sha256"] == second["sha256"]
    assert first["archive_is_real"] is False


def test_missing_archive_names_the_key(tmp_path):
    with pytest.raises(errors.DataError, match=r"data.archive = '.*nope.tar.gz' does not exist"):
        formats.prepare("cifar10", {"source": "archive", "archive": str(tmp_path / "nope.tar.gz")},
                        tmp_path / "x.npz", tmp_path / "x.json")


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "not-cifar"])
def test_damaged_archive_gives_a_clear_error_and_no_canonical_file(tmp_path, synthetic_archive, damage):
    payload = synthetic_archive.read_bytes()
    bad = tmp_path / "bad.tar.gz"
    if damage == "truncate":
        bad.write_bytes(payload[: len(payload) // 2])
    elif damage == "corrupt":
        middle = len(payload) // 2
        bad.write_bytes(payload[:middle] + bytes(b ^ 0xFF for b in payload[middle:middle + 64]) + payload[middle + 64:])
    else:
        with tarfile.open(bad, "w:gz") as tar:
            tar.add(__file__, arcname="something/else.py")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(errors.DataError) as info:
        formats.prepare("cifar10", {"source": "archive", "archive": str(bad)}, out / "d.npz", out / "d.json")
    assert str(bad) in str(info.value) or "missing from the archive" in str(info.value)
    assert list(out.iterdir()) == []  # nothing left behind, not even a temp file


def test_download_offline_names_the_archive_source(tmp_path, monkeypatch):
    """torchvision's real download code runs; without a network it fails with a pointer to `archive`."""
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(errors.DataError, match=r"download failed.*source: archive"):
        formats.prepare("cifar10", {"source": "download", "download_dir": str(tmp_path / "dl")}, tmp_path / "c.npz",
                        tmp_path / "c.json")
    assert not (tmp_path / "c.npz").exists()


def test_download_rejects_a_fake_archive_by_md5(tmp_path, monkeypatch, synthetic_archive):
    """torchvision md5-checks the archive: a synthetic one in download_dir is not taken for CIFAR-10."""
    attempts = []

    def offline(*args, **kwargs):
        attempts.append(args)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / cifar10.ARCHIVE_NAME).write_bytes(synthetic_archive.read_bytes())
    with pytest.raises(errors.DataError):
        cifar10.download_cifar10(tmp_path / "dl")
    assert attempts, "the md5 mismatch should have sent torchvision to download the real archive"


# ---------------------------------------------------------------- split sizes before any data exists (issue 14.9)
@pytest.mark.parametrize("source, settings", [
    ("digits", {"test_fraction": 0.25, "seed": 0}), ("digits", {"test_fraction": 0.1, "seed": 2}),
    ("synthetic", {"train_size": 30, "test_size": 12, "seed": 0}),
])
def test_split_sizes_are_those_the_source_produces(tmp_path, source, settings):
    summary = formats.prepare("cifar10", {"source": source, source: settings}, tmp_path / "d.npz", tmp_path / "d.json")
    spec = formats.source_spec("cifar10", {"source": source, source: settings})
    assert formats.split_sizes(spec) == (summary["n_train"], summary["n_test"])


def sizes(dataset, data_cfg):
    return formats.split_sizes(formats.source_spec(dataset, data_cfg))


def test_split_sizes_of_each_data_set_and_digits_by_hand():
    assert sizes("cifar10", {"source": "download"}) == (50_000, 10_000)
    assert sizes("cifar10", {"source": "archive", "archive": "x.tar.gz"}) == (50_000, 10_000)
    assert sizes("cifar10", {"source": "digits", "digits": {"test_fraction": 0.25}}) == (1348, 449)  # 1797·¼ = 449.25
    assert sizes("mnist", {"source": "digits", "digits": {"test_fraction": 0.25}}) == (1348, 449)
    assert sizes("stl10", {"source": "download"}) == (5_000, 8_000)
    assert sizes("fashion_mnist", {"source": "synthetic", "synthetic": {"train_size": 70}}) == (70, 500)
    assert sizes("ptb", {"source": "download"}) is None  # a token stream
    with pytest.raises(errors.DataError, match="unknown data.source 'web'"):
        formats.source_spec("cifar10", {"source": "web"})
    with pytest.raises(errors.DataError, match="'digits' is not a source of stl10"):
        formats.source_spec("stl10", {"source": "digits"})
    with pytest.raises(errors.DataError, match="set data.archives.cifar100"):
        formats.source_spec("cifar100", {"source": "archive", "archive": "cifar-10.tar.gz"})


# ---------------------------------------------------------------- prepare_data run alone (issue 14.8)
def test_prepare_data_spec_missing_keys_and_help(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"--spec is missing 1 required key\(s\):\n  archive: source archive"):
        formats.main(["--dataset", "cifar10", "--spec", '{"source": "archive"}', "--out", str(tmp_path / "x.npz"),
                      "--summary", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match=r"missing 1 required key\(s\):\n  source: download \| archive"):
        formats.main(["--dataset", "cifar10", "--spec", '{"sorce": "digits"}', "--out", str(tmp_path / "x.npz"),
                      "--summary", "x.json"])
    with pytest.raises(SystemExit, match=r"mnist: data.archives.mnist = '/no/where' does not exist"):
        formats.main(["--dataset", "mnist", "--spec", '{"source": "archive", "archive": "/no/where"}',
                      "--out", str(tmp_path / "x.npz"), "--summary", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(SystemExit):
        formats.main(["--help"])
    out = capsys.readouterr().out
    for key in ("source", "download_dir", "archive", "digits", "synthetic"):
        assert f"\n  {key} " in out
