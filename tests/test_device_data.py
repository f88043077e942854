"""The data on the device: augmentation against a per-image reference, normalisation, the batches of a
problem without augmentation."""

import numpy as np
import torch
import torch.nn.functional as F

from optimbench import device_data, formats, problems, train
from optimbench.formats import canonical
from optimbench.split import write_split

from helpers import assert_identical_runs, images, reference_augment, run_interrupted_after

CPU = torch.device("cpu")


def test_augment_flips_and_crops_each_image_as_drawn():
    x = images(8)
    got = device_data.augment(x, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)  # the same draws, in the trainer's order: flips, then offsets
    flip = torch.rand(8, generator=gen) < 0.5
    offsets = torch.randint(0, 9, (2, 8), generator=gen)
    assert torch.equal(got, reference_augment(x, flip, offsets))
    assert 0 < flip.sum() < 8 and len(set(offsets[0].tolist())) > 1  # the case exercises both branches


def test_augment_keeps_dtype_and_shape():
    out = device_data.augment(images(4), torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == (4, 3, 32, 32)


def test_normalize_uses_the_article_mean_and_std():
    x = torch.full((1, 3, 32, 32), 200, dtype=torch.uint8)
    out = device_data.Normalize(torch.device("cpu"), channels_last=False)(x)
    expected = [(200 - m) / s for m, s in zip(device_data.MEAN, device_data.STD)]
    assert torch.allclose(out[0, :, 0, 0], torch.tensor(expected))


def test_augment_with_pad_2_is_a_shifted_possibly_flipped_copy():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (6, 2, 5, 7), dtype=torch.uint8)  # no zeros: padding shows; not square
    out = device_data.augment(x, gen, 2)
    assert out.shape == x.shape
    for image, result in zip(x, out):
        candidates = []
        for flipped in (image, image.flip(2)):
            padded = F.pad(flipped, (2, 2, 2, 2))
            candidates += [padded[:, dy:dy + 5, dx:dx + 7] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(result, c) for c in candidates)
    assert not torch.equal(out, x)


def test_a_problem_without_augmentation_trains_on_its_images_as_they_are():
    """digits-vae (augment 0): the training batches are the shuffled images / 255, nothing else drawn."""
    problem = problems.get("digits-vae")
    x = torch.randint(0, 256, (10, 4, 4, 1), dtype=torch.uint8).numpy()
    images = device_data.DeviceData(x, np.zeros(10), CPU)
    normalize = device_data.Normalize(CPU, False, (0.0,), (255.0,))
    got = list(device_data.batches(problem, images, normalize, 4, torch.Generator().manual_seed(3)))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    expected = torch.from_numpy(x).permute(0, 3, 1, 2)[order].float() / 255
    torch.testing.assert_close(torch.cat([inputs for inputs, _ in got]), expected, rtol=0, atol=0)
    assert [len(inputs) for inputs, _ in got] == [4, 4, 2]


def test_a_validation_split_holds_its_rows_out_without_copying_the_training_images(tmp_path):
    """Trial data (issue 31): the training set is the split's training rows (cut to train_subset), the
    validation set its validation rows, both gathered per batch from the one array read (no copy of it), and
    the input statistics are those of the training rows alone."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    path = tmp_path / "data.npz"
    canonical.save_npz(path, {"x_train": x, "y_train": y, "x_test": x[:5], "y_test": y[:5],
                              "classes": np.array(["a", "b", "c", "d"])})
    split = write_split(path, 8, 0, tmp_path / "split.json")
    train_rows, val_rows = np.array(split["train_indices"])[:20], np.array(split["validation_indices"])
    problem = problems.get("stl10-wrn16-8")  # standardized by the training images' own statistics
    spec = {"data": str(path), "validation": str(tmp_path / "split.json"), "train_subset": 20}
    data = device_data.load_data(spec, problem, CPU)

    assert len(data.train) == 20 and len(data.validation) == 8
    torch.testing.assert_close(data.train.x, torch.from_numpy(x[train_rows]).permute(0, 3, 1, 2), rtol=0, atol=0)
    torch.testing.assert_close(data.train.y, torch.from_numpy(y[train_rows]), rtol=0, atol=0)
    torch.testing.assert_close(data.validation.x, torch.from_numpy(x[val_rows]).permute(0, 3, 1, 2), rtol=0, atol=0)
    assert data.train.images.data_ptr() == data.validation.images.data_ptr()  # one array for both sets
    mean = x[train_rows].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(data.normalisation[0], mean, rtol=1e-6)

    first, labels = next(device_data.batches(problem, data.validation, lambda b: b, 3))
    torch.testing.assert_close(first, torch.from_numpy(x[val_rows[:3]]).permute(0, 3, 1, 2), rtol=0, atol=0)
    torch.testing.assert_close(labels, torch.from_numpy(y[val_rows[:3]]), rtol=0, atol=0)


# ------------------------------------------------ DeepOBS's input pipeline (Problem.drop_last, reshuffle)
def quadratic_data(n_train=10, n_test=7, batch_size=4):
    arrays = {"x_train": np.arange(n_train * 100, dtype=np.float32).reshape(n_train, 100),
              "y_train": np.zeros(n_train, np.int64), "x_test": np.ones((n_test, 100), np.float32),
              "y_test": np.zeros(n_test, np.int64), "classes": np.array([], dtype="<U1")}
    spec = {"data": "q.npz", "batch_size": batch_size}
    return device_data.load_images(spec, problems.get("quadratic_deep"), arrays, torch.device("cpu"))


def test_deepobs_problems_drop_the_remainder_and_keep_one_order_per_run():
    data = quadratic_data()
    assert data.train.steps(4) == 2 and data.sizes == {"in_shape": (100,)} and data.normalisation is None
    gen = torch.Generator().manual_seed(3)
    first = [x[:, 0].tolist() for x, _ in device_data.batches(problems.get("quadratic_deep"), data.train,
                                                              device_data.tokens_as_is, 4, gen)]
    second = [x[:, 0].tolist() for x, _ in device_data.batches(problems.get("quadratic_deep"), data.train,
                                                               device_data.tokens_as_is, 4, gen)]
    assert [len(b) for b in first] == [4, 4]  # 10 examples, batch 4: the last 2 dropped (drop_remainder)
    assert first == second  # epoch after epoch the same order and the same 2 left out
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(3))[:8] * 100.0
    assert sum(first, []) == expected.tolist()  # the order drawn from the run's seed


def test_deepobs_problems_evaluate_whole_batches_of_the_test_set():
    data = quadratic_data(n_test=7, batch_size=4)
    assert len(data.test) == 4  # the first ⌊7 / 4⌋ · 4 test points, as DeepOBS evaluates them
    other = device_data.load_images({"data": "x", "batch_size": 4}, problems.get("digits-vae"),
                                    {"x_train": np.zeros((10, 28, 28, 1), np.uint8), "y_train": np.zeros(10, np.int64),
                                     "x_test": np.zeros((7, 28, 28, 1), np.uint8), "y_test": np.zeros(7, np.int64),
                                     "classes": np.arange(10)}, torch.device("cpu"))
    assert len(other.test) == 7 and other.train.steps(4) == 3  # other problems: every example, a partial batch


def test_a_resumed_deepobs_run_keeps_its_one_order(tmp_path, monkeypatch):
    formats.prepare("quadratic", {"source": "download", "download_dir": str(tmp_path)}, tmp_path / "q.npz",
                    tmp_path / "q.json")
    spec = {"problem": "quadratic_deep", "data": str(tmp_path / "q.npz"), "model": "deepobs_quadratic", "width": None,
            "optimizer": {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}, "seed": 42, "epochs": 3,
            "batch_size": 128, "eval_batch_size": 1000, "threads": 1, "compile": "off"}
    train.run(spec, tmp_path / "whole", threads=1)
    run_interrupted_after(spec, tmp_path / "resumed", 1, monkeypatch)
    train.run(spec, tmp_path / "resumed", threads=1)
    assert_identical_runs(tmp_path / "whole", tmp_path / "resumed", ["epoch_seconds", "eval_seconds",
                                                                     "samples_per_second"])
