"""DeepOBS's models (optimbench.deepobs_models) against their published TensorFlow definitions (github
fsschneider/DeepOBS, deepobs/tensorflow/testproblems/): parameter counts summed by hand from each file's layer list,
output shapes, TF's "same" padding, and quadratic_deep's Hessian, loss and data against DeepOBS's own numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from optimbench import deepobs_models, problems
from optimbench.formats import quadratic

FIXTURE = Path(__file__).parent / "data" / "deepobs-v1.1"


def conv(k, cin, cout):  # a conv layer's kernel and bias
    return k * k * cin * cout + cout


def dense(cin, cout):
    return cin * cout + cout


# Each count from the layers of the DeepOBS file named, written out independently of the module.
HAND_COUNTS = {
    # _2c2d.py: conv 5x5 32, conv 5x5 64, dense 1024 on 7*7*64, dense 10 (Fashion-MNIST: 1 channel)
    "deepobs_2c2d": conv(5, 1, 32) + conv(5, 32, 64) + dense(7 * 7 * 64, 1024) + dense(1024, 10),
    # _3c3d.py: conv 5x5 64 valid, conv 3x3 96 valid, conv 3x3 128 same, dense 512 on 3*3*128, 256, 10
    "deepobs_3c3d": conv(5, 3, 64) + conv(3, 64, 96) + conv(3, 96, 128) + dense(3 * 3 * 128, 512)
    + dense(512, 256) + dense(256, 10),
    # cifar100_allcnnc.py: 3 x 3x3 96, 3 x 3x3 192, 3x3 192 valid, 1x1 192, 1x1 100
    "deepobs_allcnnc": conv(3, 3, 96) + 2 * conv(3, 96, 96) + conv(3, 96, 192) + 2 * conv(3, 192, 192)
    + conv(3, 192, 192) + conv(1, 192, 192) + conv(1, 192, 100),
    # _vae.py: encoder 3 conv 4x4 64 (1, 64, 64 in), two dense 8 on 7*7*64; decoder dense 24, dense 49,
    # 3 conv-transpose 4x4 64 (1, 64, 64 in), dense 784 on 14*14*64
    "deepobs_vae": conv(4, 1, 64) + 2 * conv(4, 64, 64) + 2 * dense(7 * 7 * 64, 8) + dense(8, 24) + dense(24, 49)
    + conv(4, 1, 64) + 2 * conv(4, 64, 64) + dense(14 * 14 * 64, 784),
    "deepobs_quadratic": 100,  # θ, 1 x 100
    # _wrn.py at svhn_wrn164.py's settings: conv 3x3 16 (no biases anywhere); per block of widths 64, 128, 256, a
    # first unit (BN of its input, 1x1 shortcut, two 3x3 convs, BN between) and a second (two BN, two 3x3 convs);
    # the last BN; dense 10. A BN has 2 parameters per channel (its running statistics are buffers).
    "deepobs_wrn": 3 * 3 * 3 * 16 + sum(2 * cin + cin * w + 9 * cin * w + 2 * w + 9 * w * w
                                        + 2 * (2 * w + 9 * w * w) for cin, w in ((16, 64), (64, 128), (128, 256)))
    + 2 * 256 + dense(256, 10),
}
SHAPES = {"deepobs_2c2d": ((3, 1, 28, 28), (3, 10)), "deepobs_3c3d": ((3, 3, 32, 32), (3, 10)),
          "deepobs_allcnnc": ((3, 3, 32, 32), (3, 100)), "deepobs_vae": ((3, 1, 28, 28), (3,)),
          "deepobs_quadratic": ((3, 100), (3,)), "deepobs_wrn": ((3, 3, 32, 32), (3, 10))}


@pytest.mark.parametrize("name", deepobs_models.ZOO)
def test_each_model_has_deepobs_parameter_count_and_output_shape(name):
    torch.manual_seed(0)
    kwargs = {"num_classes": 100} if name == "deepobs_allcnnc" else {}
    model = deepobs_models.build(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == HAND_COUNTS[name]
    x_shape, out_shape = SHAPES[name]
    outputs, penalty = model(torch.rand(x_shape))
    assert tuple(outputs.shape) == out_shape and penalty.dim() == 0


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (28, 5, 1, (2, 2)), (28, 3, 2, (0, 1)), (32, 3, 2, (0, 1)), (7, 4, 1, (1, 2)), (28, 4, 2, (1, 1)),
    (28, 2, 2, (0, 0))])
def test_same_padding_is_tfs(size, kernel, stride, expected):
    # TF: out = ceil(size / stride); total = max((out - 1) * stride + kernel - size, 0); the extra pixel after
    assert deepobs_models.same_padding(size, kernel, stride) == expected


def test_weight_decay_penalty_is_tfs_l2_regularizer_over_kernels_only():
    model = deepobs_models.ThreeC3D(weight_decay=0.002)
    for p in model.parameters():
        torch.nn.init.constant_(p, 0.5)
    kernels = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    _, penalty = model(torch.zeros(1, 3, 32, 32))
    assert float(penalty.detach()) == pytest.approx(0.002 * kernels * 0.25 / 2)  # wd · Σ w² / 2, biases left out


def test_quadratic_hessian_has_deepobs_spectrum():
    rng = np.random.RandomState(42)  # quadratic_deep.py draws the eigenvalues first from RandomState(42)
    drawn = np.concatenate((rng.uniform(0.0, 1.0, 90), rng.uniform(30.0, 60.0, 10)))
    hessian = deepobs_models.quadratic_hessian()
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-10)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(hessian)), np.sort(drawn), rtol=1e-9, atol=1e-9)
    assert not np.allclose(hessian, np.diag(np.diag(hessian)))  # rotated, not diagonal


def test_quadratic_loss_on_a_fixed_batch_by_hand():
    model = deepobs_models.QuadraticDeep()
    q = model.hessian.double()
    x = torch.stack([torch.ones(100), torch.zeros(100), torch.full((100,), 3.0)])
    losses, penalty = model(x)
    # θ = 1: at x = 1 nothing; at x = 0, ½ 1ᵀQ1 = ½ ΣQ; at x = 3, ½ (−2)²·1ᵀQ1 = 2 ΣQ
    assert losses.tolist() == pytest.approx([0.0, 0.5 * float(q.sum()), 2.0 * float(q.sum())], rel=1e-5)
    assert float(penalty) == 0.0


def test_quadratic_reproduces_deepobs_published_loss_before_training():
    # Every published run's test loss at epoch 0 (θ = 1, before training): DeepOBS evaluates the unshuffled test
    # set in whole batches of 128 (7 of them: 896 of the 1,000 points), averaging the batch means.
    published = {json.loads(f.read_text())["test_losses"][0] for f in FIXTURE.glob("quadratic_deep/*/*/*.json")}
    assert len(published) == 1
    losses, _ = deepobs_models.QuadraticDeep()(torch.from_numpy(quadratic.points("test")))
    ours = float(losses.detach()[:896].double().view(7, 128).mean(1).mean())
    assert ours == pytest.approx(published.pop(), rel=1e-6)


def test_quadratic_data_are_deepobs_draws():
    train = np.random.RandomState(42).normal(0.0, 0.6, (1000, 100)).astype(np.float32)
    assert np.array_equal(quadratic.points("train"), train)
    assert not np.array_equal(quadratic.points("test"), train)


def test_quadratic_archive_is_reproducible_and_real(tmp_path):
    path = quadratic.download(tmp_path)
    assert quadratic.is_real(path) and not quadratic.is_real(tmp_path / "missing.npz")
    arrays = quadratic.read(path)
    assert arrays["x_train"].shape == (1000, 100) and arrays["y_test"].tolist() == [0] * 1000
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((3, 5), np.float32), x_test=np.zeros((3, 5), np.float32))
    with pytest.raises(Exception, match="x_train is float32 \\(3, 5\\)"):
        quadratic.read(tmp_path / "bad.npz")


def test_deepobs_problems_build_and_carry_deepobs_targets():
    targets = json.loads((FIXTURE / "convergence_performance.json").read_text())
    for name, problem in problems.DEEPOBS_PROBLEMS.items():
        assert problem.target == targets[name]
        assert problem.drop_last and not problem.reshuffle
        with torch.device("meta"):
            problem.build_model(None)
