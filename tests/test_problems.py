"""The problem registry: each problem's data set, model, loss, metrics and directions."""

import math

import numpy as np
import pytest
import torch

from optimbench import device_data, formats, problems
from optimbench.formats import canonical, cifar10

SIX = ["cifar10-resnet18", "cifar100-vgg16", "stl10-wrn16-8", "fmnist-capsnet", "ptb-lstm", "mnist-vae"]


def test_registry_holds_the_demon_papers_six_and_the_offline_demo_problems():
    assert list(problems.DEMON_PAPER) == SIX
    assert set(problems.DEMO) <= set(problems.PROBLEMS) and len(problems.DEMO) >= 2
    for name, problem in problems.PROBLEMS.items():
        assert problem.name == name and problem.dataset in formats.FORMATS
        assert problem.primary in [m.name for m in problem.metrics]
    for name in problems.DEMO:  # offline, on real data
        assert problems.get(name).source == "digits"


@pytest.mark.parametrize("name, primary, higher", [
    ("cifar10-resnet18", "test_acc", True), ("cifar100-vgg16", "test_acc", True), ("stl10-wrn16-8", "test_acc", True),
    ("fmnist-capsnet", "test_acc", True), ("ptb-lstm", "test_perplexity", False), ("mnist-vae", "test_neg_elbo", False),
    ("digits-vae", "test_neg_elbo", False)])
def test_each_problem_states_its_primary_metric_and_direction(name, primary, higher):
    problem = problems.get(name)
    assert problem.primary == primary and problem.primary_metric.higher_is_better is higher
    assert problem.primary_metric.worst == (0.0 if higher else math.inf)
    assert problem.metric("train_loss" if problem.kind != "vae" else "train_neg_elbo").higher_is_better is False


def test_metric_direction_decides_better_and_reaching_the_target():
    acc, ppl = problems.get("cifar10-resnet18").primary_metric, problems.get("ptb-lstm").primary_metric
    assert acc.reaches(0.81, 0.8) and not acc.reaches(0.79, 0.8) and acc.better(0.9, 0.8)
    assert ppl.reaches(95.0, 100.0) and not ppl.reaches(105.0, 100.0) and ppl.better(80.0, 90.0)
    assert not ppl.reaches(float("nan"), 100.0)
    assert ppl.low == 1.0  # a perplexity is at least 1: intervals are clipped there


def test_unknown_names_are_reported_with_the_known_ones():
    with pytest.raises(KeyError, match="unknown problem 'imagenet-vit'; known: cifar10-resnet18"):
        problems.get("imagenet-vit")
    with pytest.raises(KeyError, match="has no metric 'test_acc'.*test_perplexity"):
        problems.get("ptb-lstm").metric("test_acc")


# ---------------------------------------------------------------- losses and metrics by hand
def test_classification_sums_by_hand():
    task = problems.TASKS["classification"]
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    expected = math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1))  # -log softmax of the true class
    metrics = task.metrics(task.batch_sums(logits, None, y))
    assert metrics == pytest.approx({"loss": expected / 2, "acc": 0.5})
    assert task.loss(logits, None, y).item() == pytest.approx(expected / 2)


def test_language_model_perplexity_of_uniform_predictions_is_the_vocabulary_size():
    task = problems.TASKS["language_model"]
    logits, y = torch.zeros(2, 3, 7), torch.randint(0, 7, (2, 3))
    metrics = task.metrics(task.batch_sums((logits, None), None, y))
    assert metrics["loss"] == pytest.approx(math.log(7)) and metrics["perplexity"] == pytest.approx(7.0)


def test_vae_negative_elbo_by_hand():
    """Logits 0 (p = ½) on 4 white pixels: 4 log 2 nats; μ = 1, log σ² = 0 in 3 dimensions: KL = 3 × ½."""
    task = problems.TASKS["vae"]
    outputs = (torch.zeros(2, 4), torch.ones(2, 3), torch.zeros(2, 3))
    x = torch.ones(2, 1, 2, 2)
    metrics = task.metrics(task.batch_sums(outputs, x, None))
    assert metrics == pytest.approx({"neg_elbo": 4 * math.log(2) + 1.5, "recon": 4 * math.log(2), "kl": 1.5})
    assert task.loss(outputs, x, None).item() == pytest.approx(4 * math.log(2) + 1.5)


def test_capsule_margin_and_reconstruction_loss_by_hand():
    """Sabour et al. eq. 4: T·max(0, 0.9 - |v|)² + 0.5 (1 - T) max(0, |v| - 0.1)², + 0.0005 · SSE."""
    task = problems.TASKS["capsule"]
    lengths = torch.tensor([[0.95, 0.2], [0.5, 0.05]])
    x = torch.ones(2, 1, 2, 2)
    recon = torch.stack([torch.ones(4), torch.zeros(4)])
    y = torch.tensor([0, 0])
    per_example = [0.5 * 0.1 ** 2, 0.4 ** 2 + 0.0005 * 4]
    metrics = task.metrics(task.batch_sums((lengths, recon), x, y))
    assert metrics == pytest.approx({"loss": sum(per_example) / 2, "acc": 1.0})


def test_inputs_unit_and_standardised():
    """The trainer's normalisation (device_data.input_normalisation + Normalize): pixels / 255 for "unit"
    problems, per-channel standardisation by the training images' own statistics for other "standardize"
    problems, the article's constants for the CIFAR-10 ResNet18 problems."""
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)

    def normalised(problem):
        mean, std = device_data.input_normalisation(problem, images)
        return device_data.Normalize(torch.device("cpu"), False, mean, std)(x)

    unit = normalised(problems.get("mnist-vae"))
    assert unit.shape == (20, 3, 8, 8) and unit.min() >= 0 and unit.max() <= 1
    assert torch.allclose(unit[3, 1], x[3, 1].float() / 255)
    standard = normalised(problems.get("cifar100-vgg16"))
    assert torch.allclose(standard.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(standard.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    article = normalised(problems.get("cifar10-resnet18"))  # the article's MEAN/STD, whatever the images
    mean, std = torch.tensor((129.3, 124.1, 112.4)), torch.tensor((68.2, 65.4, 70.4))
    assert torch.allclose(article[5, :, 2, 3], (x[5, :, 2, 3].float() - mean) / std)


# ---------------------------------------------------------------- every problem end to end, tiny
TINY_DATA = {"cifar100": {"train_size": 100, "test_size": 10}, "stl10": {"train_size": 10, "test_size": 4},
             "fashion_mnist": {"train_size": 20, "test_size": 10}, "mnist": {"train_size": 20, "test_size": 10},
             "ptb": {"words": 20, "train_lines": 30, "test_lines": 5}}


def problem_data(problem, tmp_path):
    """The problem's canonical arrays: its pinned (digits) source, else a tiny synthetic one."""
    if problem.dataset == "cifar10" and problem.source is None:
        archive = cifar10.make_synthetic_archive(tmp_path / "c.tar.gz", 20, 10)
        return cifar10.read_cifar_archive(archive)
    spec = {"source": problem.source, "download_dir": str(tmp_path)} if problem.source else {"source": "synthetic",
                                                              "synthetic": TINY_DATA[problem.dataset]}
    formats.prepare(problem.dataset, spec, tmp_path / "d.npz", tmp_path / "d.json")
    return canonical.load_canonical(tmp_path / "d.npz")


@pytest.mark.parametrize("name", sorted(problems.PROBLEMS))
def test_every_problem_trains_a_few_steps_on_its_data_format(tmp_path, name):
    problem = problems.get(name)
    arrays = problem_data(problem, tmp_path)
    torch.manual_seed(0)
    if problem.inputs == "tokens":
        from optimbench.paper_models import batchify

        model = problem.build_model(problem.test_width, vocab_size=len(arrays["vocab"]), dropout=0.0)
        streams = batchify(torch.from_numpy(arrays["tokens_train"]), 4)
        x, y = streams[:-1][:20], streams[1:][:20]
    else:
        model = problem.build_model(problem.test_width, **({"num_classes": len(arrays["classes"])}
                                                           if "num_classes" in problem.model_kwargs else {}))
        normalisation = device_data.input_normalisation(problem, arrays["x_train"])
        n = 2 if problem.dataset == "stl10" else 8  # 96×96 images: keep the step cheap
        stored = torch.from_numpy(arrays["x_train"][:n])
        stored = stored.permute(0, 3, 1, 2) if stored.dim() == 4 else stored  # images, or feature vectors
        x = device_data.input_transform(problem, normalisation, torch.device("cpu"), False)(stored)
        y = torch.from_numpy(arrays["y_train"][:n])
    # DeepOBS's models keep TF's initialisation, made for smaller steps (their baselines' Adam: 1.6e-4 to 4e-2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3 if name in problems.DEEPOBS_PROBLEMS else 1e-2)
    losses = []
    for _ in range(4):
        model.train()
        outputs = problem.task.forward(model, x, y)
        loss = problem.task.loss(outputs, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        metrics = problem.task.metrics(problem.task.batch_sums(problem.task.forward(model, x, y), x, y))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert set(metrics) == {m.name.removeprefix("train_") for m in problem.metrics if m.name.startswith("train_")}
    assert all(np.isfinite(v) for v in metrics.values())


def test_table_lists_the_problems_with_their_directions():
    rows = problems.table(["ptb-lstm", "digits-resnet18"]).set_index("problem")
    assert list(rows.index) == ["ptb-lstm", "digits-resnet18"]
    assert rows.loc["ptb-lstm", "primary"] == "test_perplexity" and not rows.loc["ptb-lstm", "higher_is_better"]
    assert rows.loc["digits-resnet18", "source"] == "digits" and rows.loc["digits-resnet18", "target"] == 0.5
    assert len(problems.table()) == len(problems.PROBLEMS)


def test_input_stats_are_each_channels_mean_and_std_without_a_float_copy_of_the_images(monkeypatch):
    """Issue 29.2: a float64 copy of CIFAR-100's training images was 1.2 GB; traced allocations stay far below the
    images' own size (chunks of a few images are counted at once), and the values match float64 NumPy's."""
    import tracemalloc

    monkeypatch.setattr(problems, "STATS_CHUNK", 3 * 32 * 32 * 16)  # several chunks, the last one partial
    images = np.random.default_rng(0).integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8)
    images[..., 2] //= 3  # channels that differ
    tracemalloc.start()
    mean, std = problems.input_stats(images)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < images.nbytes / 5, peak  # a float64 copy: 8 × images.nbytes
    flat = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, flat.std(0), rtol=1e-12)
    one = np.full((2, 4, 4, 1), 7, dtype=np.uint8)  # one channel, every pixel alike: std 0
    assert problems.input_stats(one) == (np.array([7.0]), np.array([0.0]))
