"""Problem-generic epochs (optimbench.loops) on real digits and on PTB-format text."""

import math

import numpy as np
import pytest
import torch

from optimbench import data, formats, loops, problems


def test_crop_flip_is_a_shifted_possibly_flipped_copy():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (6, 5, 7, 2), dtype=torch.uint8)  # no zeros: padding shows
    out = loops.crop_flip(x, 2, gen)
    assert out.shape == x.shape
    for image, result in zip(x, out):
        candidates = []
        for flipped in (image, image.flip(1)):
            padded = torch.nn.functional.pad(flipped.permute(2, 0, 1), (2, 2, 2, 2)).permute(1, 2, 0)
            candidates += [padded[dy:dy + 5, dx:dx + 7] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(result, c) for c in candidates)
    assert not torch.equal(out, x)


def test_digits_vae_learns_over_two_epochs(tmp_path):
    problem = problems.get("digits-vae")
    formats.prepare(problem.dataset, {"source": problem.source}, tmp_path / "d.npz", tmp_path / "d.json")
    arrays = data.load_canonical(tmp_path / "d.npz")
    x_train, x_test = torch.from_numpy(arrays["x_train"][:512]), torch.from_numpy(arrays["x_test"])
    y_train, y_test = torch.from_numpy(arrays["y_train"][:512]), torch.from_numpy(arrays["y_test"])
    torch.manual_seed(0)
    model = problem.build_model(32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    before = loops.evaluate(problem, model, x_test, y_test, 256)
    # An untrained decoder predicts p ≈ ½ for 784 pixels: about 784 log 2 nats.
    assert before["recon"] == pytest.approx(784 * math.log(2), rel=0.1)
    history = [loops.train_epoch(problem, model, optimizer, x_train, y_train, 64, gen)]
    after_one = loops.evaluate(problem, model, x_test, y_test, 256)
    history.append(loops.train_epoch(problem, model, optimizer, x_train, y_train, 64, gen))
    after_two = loops.evaluate(problem, model, x_test, y_test, 256)
    assert after_two["neg_elbo"] < after_one["neg_elbo"] < before["neg_elbo"]
    assert history[1]["neg_elbo"] < history[0]["neg_elbo"]
    assert after_two["neg_elbo"] == pytest.approx(after_two["recon"] + after_two["kl"])


def test_lstm_beats_the_unigram_perplexity_on_ptb_format_text(tmp_path):
    """The synthetic corpus follows a bigram chain: a trained LSTM must beat the perplexity of the
    training set's word frequencies (computed here with numpy)."""
    problem = problems.get("ptb-lstm")
    spec = {"source": "synthetic", "synthetic": {"words": 30, "train_lines": 600, "test_lines": 100}}
    formats.prepare("ptb", spec, tmp_path / "p.npz", tmp_path / "p.json")
    arrays = data.load_canonical(tmp_path / "p.npz")
    counts = np.bincount(arrays["tokens_train"], minlength=len(arrays["vocab"])) + 1
    unigram = math.exp(-np.log(counts / counts.sum())[arrays["tokens_test"]].mean())
    torch.manual_seed(0)
    model = problem.build_model(32, vocab_size=len(arrays["vocab"]), dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    train, test = torch.from_numpy(arrays["tokens_train"]), torch.from_numpy(arrays["tokens_test"])
    for _ in range(4):
        metrics = loops.train_epoch(problem, model, optimizer, train, None, 8, None, bptt=20)
    result = loops.evaluate(problem, model, test, None, 8, bptt=20)
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
    assert result["perplexity"] < 0.5 * unigram  # measured: 8.4 against 28.4
    assert metrics["perplexity"] < unigram


def test_ptb_training_clips_the_gradient_norm_at_5():
    problem = problems.get("ptb-lstm")
    assert problem.grad_clip == 5.0
    torch.manual_seed(0)
    model = problem.build_model(8, vocab_size=20, dropout=0.0)
    with torch.no_grad():
        model.decoder.weight.mul_(1000)  # huge gradients
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loops.train_epoch(problem, model, optimizer, torch.randint(0, 20, (41,)), None, 2, None, bptt=20)
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert norm.item() == pytest.approx(5.0, rel=1e-4)
