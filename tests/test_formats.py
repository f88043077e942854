"""The Demon paper's data sets: each real file format written and read back, corrupt files failing
cleanly, offline downloads naming the offline options (optimbench.formats)."""

import gzip
import pickle
import struct
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

from optimbench import formats
from optimbench.errors import DataError
from optimbench.formats import cifar100, idx, ptb, stl10
from optimbench.formats.canonical import load_canonical
from optimbench.io import sha256

TINY = {"cifar100": {"train_size": 120, "test_size": 40},
        "stl10": {"train_size": 20, "test_size": 10, "unlabeled_size": 2},
        "mnist": {"train_size": 60, "test_size": 20}, "fashion_mnist": {"train_size": 60, "test_size": 20},
        "ptb": {"words": 20, "train_lines": 40, "test_lines": 10}}


def images(rng, n, side, channels):
    return rng.integers(0, 256, (n, side, side, channels), dtype=np.uint8)


# ---------------------------------------------------------------- each format: bytes round-trip
def test_cifar100_round_trip_with_fine_and_coarse_labels(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = images(rng, 7, 32, 3), images(rng, 3, 32, 3)
    fine_train, fine_test = np.array([0, 5, 99, 3, 4, 5, 6]), np.array([1, 2, 98])
    splits = {"train": (x_train, fine_train, fine_train // 5), "test": (x_test, fine_test, fine_test // 5)}
    path = cifar100.write(tmp_path / cifar100.ARCHIVE_NAME, splits, [f"f{i}" for i in range(100)],
                          [f"c{i}" for i in range(20)])
    arrays = cifar100.read(path)
    np.testing.assert_array_equal(arrays["x_train"], x_train)
    np.testing.assert_array_equal(arrays["x_test"], x_test)
    assert arrays["y_train"].tolist() == fine_train.tolist() and arrays["coarse_test"].tolist() == [0, 0, 19]
    assert arrays["classes"][99] == "f99" and len(arrays["coarse_classes"]) == 20


def test_cifar100_archive_has_the_real_files_keys_and_layout(tmp_path):
    image = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    image[0, 0, 1, 0], image[0, 2, 0, 2] = 7, 9  # red at (row 0, col 1); blue at (row 2, col 0)
    path = cifar100.write(tmp_path / "a.tar.gz", {"train": (image, [3], [0]), "test": (image, [3], [0])},
                          ["x"] * 100, ["y"] * 20)
    with tarfile.open(path) as tar:
        assert sorted(tar.getnames()) == ["cifar-100-python/meta", "cifar-100-python/test", "cifar-100-python/train"]
        train = pickle.load(tar.extractfile("cifar-100-python/train"), encoding="latin1")
        meta = pickle.load(tar.extractfile("cifar-100-python/meta"), encoding="latin1")
    assert set(train) == {"filenames", "batch_label", "fine_labels", "coarse_labels", "data"}
    assert set(meta) == {"fine_label_names", "coarse_label_names"}
    assert train["data"].shape == (1, 3072) and train["data"][0, 1] == 7 and train["data"][0, 2048 + 64] == 9


def test_stl10_round_trip_and_column_major_layout(tmp_path):
    rng = np.random.default_rng(1)
    x_train, x_test = images(rng, 3, 96, 3), images(rng, 2, 96, 3)
    x_train[0, 0, 1, 0] = 200  # red at row 0, column 1
    classes = [f"class{i}" for i in range(10)]
    path = stl10.write(tmp_path / stl10.ARCHIVE_NAME, {"train": (x_train, [0, 9, 4]), "test": (x_test, [1, 2])},
                       classes, unlabeled=images(rng, 1, 96, 3))
    with tarfile.open(path) as tar:
        raw = tar.extractfile("stl10_binary/train_X.bin").read()
        labels = tar.extractfile("stl10_binary/train_y.bin").read()
        assert "stl10_binary/unlabeled_X.bin" in tar.getnames() and "stl10_binary/fold_indices.txt" in tar.getnames()
    assert raw[96] == 200  # column-major: (channel 0, column 1, row 0) is byte 1 × 96 + 0
    assert list(labels) == [1, 10, 5]  # stored 1-based
    arrays = stl10.read(path)
    np.testing.assert_array_equal(arrays["x_train"], x_train)
    np.testing.assert_array_equal(arrays["x_test"], x_test)
    assert arrays["y_train"].tolist() == [0, 9, 4] and list(arrays["classes"]) == classes


def test_stl10_reader_agrees_with_torchvisions_reader(tmp_path, monkeypatch):
    """torchvision's STL10 class reads the same binaries to the same pixels and labels (its md5 check of
    the real files is switched off: these are synthetic)."""
    from torchvision.datasets import STL10

    rng = np.random.default_rng(2)
    x = images(rng, 4, 96, 3)
    stl10.write(tmp_path / "a.tar.gz", {"train": (x, [0, 1, 2, 3]), "test": (x[:1], [0])}, ["a"] * 10)
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)
    theirs = STL10(str(tmp_path), split="train", download=False)
    np.testing.assert_array_equal(theirs.data.transpose(0, 2, 3, 1), stl10.read(tmp_path / "a.tar.gz")["x_train"])
    assert theirs.labels.tolist() == [0, 1, 2, 3]


def test_idx_bytes_are_mnists_format(tmp_path):
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    payload = idx.encode_idx(x)
    assert payload[:4] == bytes([0, 0, 8, 3]) and struct.unpack(">3I", payload[4:16]) == (2, 28, 28)
    assert idx.encode_idx(np.array([7, 1], dtype=np.uint8)) == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 1])
    np.testing.assert_array_equal(idx.parse_idx(payload, "x"), x)


def test_idx_round_trip_and_torchvisions_reader_agrees(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    rng = np.random.default_rng(3)
    splits = {"train": (images(rng, 5, 28, 1)[..., 0], [0, 1, 2, 3, 9]),
              "test": (images(rng, 2, 28, 1)[..., 0], [4, 5])}
    folder = idx.write(tmp_path / "raw", splits)
    arrays = idx.read(folder)
    np.testing.assert_array_equal(arrays["x_train"][..., 0], splits["train"][0])
    assert arrays["x_train"].shape == (5, 28, 28, 1) and arrays["y_test"].tolist() == [4, 5]
    # torchvision's own IDX reader, on the un-gzipped bytes
    (tmp_path / "t").mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / "t" / stem).write_bytes(gzip.decompress((folder / f"{stem}.gz").read_bytes()))
    theirs = read_image_file(str(tmp_path / "t/train-images-idx3-ubyte")).numpy()
    np.testing.assert_array_equal(theirs, splits["train"][0])
    assert read_label_file(str(tmp_path / "t/train-labels-idx1-ubyte")).tolist() == [0, 1, 2, 3, 9]


def test_ptb_round_trip_ids_in_first_appearance_order(tmp_path):
    folder = ptb.write(tmp_path, {"train": ["the cat <unk>", "the N"], "valid": ["cat the"], "test": ["N N"]})
    assert (folder / "ptb.train.txt").read_text() == " the cat <unk> \n the N \n"  # PTB's own line layout
    arrays = ptb.read(folder)
    assert arrays["vocab"].tolist() == ["<eos>", "the", "cat", "<unk>", "N"]
    assert arrays["tokens_train"].tolist() == [1, 2, 3, 0, 1, 4, 0]
    assert arrays["tokens_valid"].tolist() == [2, 1, 0] and arrays["tokens_test"].tolist() == [4, 4, 0]


def test_ptb_cut_mid_line_is_truncated(tmp_path):
    folder = ptb.write(tmp_path, {"train": ["a b"], "valid": ["a b"], "test": ["b a"]})
    (folder / "ptb.valid.txt").write_text(" a b \n a")
    with pytest.raises(DataError, match=r"ptb.valid.txt: the last line does not end with a newline"):
        ptb.read(folder)


def test_ptb_word_outside_the_training_vocabulary_is_an_error(tmp_path):
    folder = ptb.write(tmp_path, {"train": ["a b"], "valid": ["a zebra"], "test": ["b"]})
    with pytest.raises(DataError, match=r"ptb.valid.txt: 1 word\(s\) not in ptb.train.txt.*zebra"):
        ptb.read(folder)


# ---------------------------------------------------------------- every data set through prepare()
@pytest.mark.parametrize("name", sorted(TINY))
def test_synthetic_source_round_trips_to_a_reproducible_canonical_file(tmp_path, name):
    spec = {"source": "synthetic", "synthetic": TINY[name]}
    first = formats.prepare(name, spec, tmp_path / "a.npz", tmp_path / "a.json")
    second = formats.prepare(name, spec, tmp_path / "b.npz", tmp_path / "b.json")
    assert first["sha256"] == second["sha256"] == sha256(tmp_path / "a.npz")
    assert first["archive_is_real"] is False and first["dataset"] == name
    arrays = load_canonical(tmp_path / "a.npz")
    if name == "ptb":
        assert first["vocab_size"] == len(arrays["vocab"]) == 22 + 1  # 20 words, <unk>, N and <eos>
        assert first["n_train"] == len(arrays["tokens_train"])
        return
    shape = {"cifar100": (32, 32, 3), "stl10": (96, 96, 3)}.get(name, (28, 28, 1))
    assert arrays["x_train"].shape == (TINY[name]["train_size"], *shape) and arrays["x_train"].dtype == np.uint8
    assert arrays["y_test"].dtype == np.int64 and len(arrays["y_test"]) == TINY[name]["test_size"]
    assert first["image_shape"] == list(shape)


def test_synthetic_images_are_learnable(tmp_path):
    """A nearest-class-mean classifier on raw pixels of the synthetic IDX set beats chance (10%) by far."""
    arrays = idx.read(idx.synthetic(tmp_path / "raw", 200, 100, seed=0))
    x_train, x_test = (arrays[k].reshape(len(arrays[k]), -1).astype(float) for k in ("x_train", "x_test"))
    means = np.stack([x_train[arrays["y_train"] == c].mean(0) for c in range(10)])
    predicted = ((x_test[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == arrays["y_test"]).mean() > 0.6


def test_digits_in_idx_format_are_the_real_digits(tmp_path):
    summary = formats.prepare("mnist", {"source": "digits"}, tmp_path / "d.npz", tmp_path / "d.json")
    arrays = load_canonical(tmp_path / "d.npz")
    assert summary["n_train"] + summary["n_test"] == 1797 and summary["n_test"] == 449
    assert arrays["x_train"].shape == (1348, 28, 28, 1) and arrays["x_train"].max() == 255
    assert sorted(np.unique(arrays["y_test"])) == list(range(10))


def test_archive_source_reads_the_given_file(tmp_path):
    archive = cifar100.synthetic(tmp_path / "c100.tar.gz", 30, 10, seed=1)
    summary = formats.prepare("cifar100", {"source": "archive", "archive": str(archive)}, tmp_path / "c.npz",
                              tmp_path / "c.json")
    assert summary["archive"] == str(archive) and summary["archive_sha256"] == sha256(archive)
    assert summary["archive_is_real"] is False  # its md5 is not the published archive's


def test_archive_with_the_published_md5_counts_as_real(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR100

    from optimbench.io import file_digest

    archive = cifar100.synthetic(tmp_path / "c100.tar.gz", 30, 10, seed=1)
    monkeypatch.setattr(CIFAR100, "tgz_md5", file_digest(archive, "md5"))
    summary = formats.prepare("cifar100", {"source": "archive", "archive": str(archive)}, tmp_path / "c.npz",
                              tmp_path / "c.json")
    assert summary["archive_is_real"] is True


@pytest.mark.parametrize("spec, message", [
    ({"source": "archive", "archive": "/nope/x.tar.gz"},
     r"data.archives.cifar100 = '/nope/x.tar.gz' does not exist: put cifar-100-python.tar.gz there"),
    ({"source": "digits"}, r"data.source = 'digits' is not a source of cifar100: use download, archive, synthetic"),
    ({"source": "torrent"}, r"data.source = 'torrent'"),
])
def test_bad_sources_are_named(tmp_path, spec, message):
    with pytest.raises(DataError, match=message):
        formats.prepare("cifar100", spec, tmp_path / "c.npz", tmp_path / "c.json")
    assert list(tmp_path.iterdir()) == []


def test_unknown_data_set_lists_the_known_ones(tmp_path):
    with pytest.raises(DataError, match="unknown data set 'imagenet'; known: cifar10, cifar100, stl10"):
        formats.prepare("imagenet", {"source": "synthetic"}, tmp_path / "c.npz", tmp_path / "c.json")


# ---------------------------------------------------------------- damaged files fail cleanly
def damage(payload: bytes, how: str) -> bytes:
    if how == "truncate":
        return payload[: len(payload) // 2]
    middle = len(payload) // 2
    return payload[:middle] + bytes(b ^ 0xFF for b in payload[middle:middle + 64]) + payload[middle + 64:]


def archive_of(name: str, tmp_path):
    """A synthetic archive (file or folder) of `name`, and the file in it to damage."""
    fmt = formats.get(name)
    where = fmt.synthetic(tmp_path / fmt.archive_name, **TINY[name])
    target = {"mnist": where / "train-images-idx3-ubyte.gz", "fashion_mnist": where / "t10k-labels-idx1-ubyte.gz",
              "ptb": where / "ptb.test.txt"}.get(name, where)
    return where, target


@pytest.mark.parametrize("how", ["truncate", "corrupt"])
@pytest.mark.parametrize("name", sorted(TINY))
def test_damaged_file_gives_a_clear_error_naming_it_and_leaves_nothing(tmp_path, name, how):
    where, target = archive_of(name, tmp_path)
    if name == "ptb" and how == "corrupt":
        target.write_bytes(target.read_bytes()[:10] + b"\xff\xfe\x80" + target.read_bytes()[10:])  # not UTF-8
    else:
        target.write_bytes(damage(target.read_bytes(), how))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError) as info:
        formats.prepare(name, {"source": "archive", "archive": str(where)}, out / "d.npz", out / "d.json")
    assert str(target) in str(info.value) or (name == "ptb" and str(where) in str(info.value))
    assert list(out.iterdir()) == []  # nothing left behind, not even a temp file


@pytest.mark.parametrize("name", ["cifar100", "stl10"])
def test_a_foreign_archive_is_refused_by_name(tmp_path, name):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(__file__, arcname="something/else.py")
    with pytest.raises(DataError, match=rf"{bad}.*missing"):
        formats.prepare(name, {"source": "archive", "archive": str(bad)}, tmp_path / "d.npz", tmp_path / "d.json")
    assert not (tmp_path / "d.npz").exists()


def test_idx_with_a_wrong_header_is_refused(tmp_path):
    folder = idx.synthetic(tmp_path / "raw", 10, 5)
    payload = gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(payload[:2] + b"\x0d" + payload[3:]))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz.*IDX type 0x0d, expected 0x08"):
        idx.read(folder)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(payload + b"\0"))
    with pytest.raises(DataError, match=r"IDX header says \(10,\) \(10 values\), the file holds 11"):
        idx.read(folder)


def test_idx_labels_out_of_range_are_refused(tmp_path):
    folder = idx.write(tmp_path / "raw", {"train": (np.zeros((2, 28, 28), np.uint8), [0, 10]),
                                          "test": (np.zeros((1, 28, 28), np.uint8), [0])})
    with pytest.raises(DataError, match="train labels outside 0..9"):
        idx.read(folder)


# ---------------------------------------------------------------- offline downloads
# DeepOBS's quadratic is generated, never downloaded (its data: tests/test_deepobs_models.py)
DOWNLOADED = sorted(set(formats.FORMATS) - {"quadratic"})


@pytest.mark.parametrize("name", DOWNLOADED)
def test_offline_download_names_the_offline_options(tmp_path, monkeypatch, name):
    """torchvision's real download code runs; offline it fails with a pointer to `archive` and `synthetic`."""
    calls = []

    def offline(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"(?s)download failed.*source: archive") as info:
        formats.prepare(name, {"source": "download", "download_dir": str(tmp_path / "dl")}, tmp_path / "d.npz",
                        tmp_path / "d.json")
    # cifar10's message is optimbench.formats.cifar10's
    assert name == "cifar10" or "source: synthetic" in str(info.value)
    assert calls, "the download code should have tried the network"
    assert not (tmp_path / "d.npz").exists()



def test_command_line_prepares_one_data_set(tmp_path):
    import subprocess
    import sys

    spec = '{"source": "synthetic", "synthetic": {"train_size": 12, "test_size": 4}}'
    done = subprocess.run([sys.executable, "-m", "optimbench.formats", "--dataset", "fashion_mnist", "--spec", spec,
                           "--out", str(tmp_path / "f.npz"), "--summary", str(tmp_path / "f.json")],
                          capture_output=True, text=True, check=True)
    assert f"sha256 {sha256(tmp_path / 'f.npz')}" in done.stdout
    assert load_canonical(tmp_path / "f.npz")["classes"][9] == "Ankle boot"


def test_command_line_names_a_missing_source(tmp_path):
    with pytest.raises(SystemExit, match="source"):
        formats.main(["--dataset", "ptb", "--spec", "{}", "--out", str(tmp_path / "p.npz"),
                      "--summary", str(tmp_path / "p.json")])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- published sizes (the rehearsal's data)
@pytest.mark.parametrize("name", DOWNLOADED)
def test_published_sizes_give_each_data_set_its_published_counts_before_any_data_exists(name):
    spec = formats.source_spec(name, {"source": "synthetic", "synthetic": {"published_sizes": True, "seed": 3}})
    assert spec["synthetic"]["seed"] == 3 and "published_sizes" not in spec["synthetic"]
    expected = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "stl10": (5_000, 8_000),
                "mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000)}
    if name == "ptb":
        assert formats.token_sizes(spec) == (929_589, 73_760, 82_430) and spec["synthetic"]["words"] == 9_997
    else:
        assert formats.split_sizes(spec) == expected[name]


def test_ptb_with_token_counts_holds_exactly_those_tokens_and_every_word_type(tmp_path):
    arrays = ptb.read(ptb.synthetic(tmp_path / "ptb", words=30, seed=1, tokens=[400, 57, 61]))
    assert [len(arrays[f"tokens_{s}"]) for s in ("train", "valid", "test")] == [400, 57, 61]
    assert len(arrays["vocab"]) == 30 + 3  # w0..w29, <unk>, N and <eos>
    for split in ("train", "valid", "test"):  # every line has words: no <eos> right after another
        eos = np.flatnonzero(arrays[f"tokens_{split}"] == 0)
        assert eos[-1] == len(arrays[f"tokens_{split}"]) - 1 and (np.diff(eos) >= 2).all() and eos[0] >= 1
    with pytest.raises(ValueError, match="at least 2 tokens"):
        ptb.synthetic(tmp_path / "bad", words=30, tokens=[400, 1, 61])


def test_synthetic_images_in_chunks_are_the_images_of_one_draw(monkeypatch):
    from optimbench.formats import common

    prototypes = np.random.default_rng(0).uniform(0, 255, size=(3, 8, 8, 2))
    whole = common.synthetic_images(10, prototypes, np.random.default_rng(4))
    monkeypatch.setattr(common, "CHUNK", 3)  # 3 + 3 + 3 + 1
    chunked = common.synthetic_images(10, prototypes, np.random.default_rng(4))
    assert (whole[0] == chunked[0]).all() and (whole[1] == chunked[1]).all()
    rng = np.random.default_rng(4)  # the generator's recipe, drawn at once
    labels, shifts = rng.integers(0, 3, 10), rng.integers(-3, 4, size=(10, 2))
    images = np.stack([np.roll(prototypes[k], s, axis=(0, 1)) for k, s in zip(labels, shifts)]).astype(np.float32)
    images += rng.normal(0.0, 40.0, images.shape)
    assert (np.clip(images, 0, 255).astype(np.uint8) == whole[0]).all()
