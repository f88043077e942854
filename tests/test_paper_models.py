"""The Demon paper's models: parameter counts against the papers, output shapes, one training step."""

import pytest
import torch

from optimbench import paper_models
from optimbench.resnet import count_parameters


def wrn_parameters(depth: int, k: int, classes: int) -> int:
    """WRN-depth-k counted layer by layer from Zagoruyko & Komodakis 2016, Table 1 (pre-activation blocks:
    BN (2 per channel), 3×3 convs without bias, 1×1 shortcut where the width or stride changes)."""
    n, total, width_in = (depth - 4) // 6, 3 * 16 * 9, 16
    for width in (16 * k, 32 * k, 64 * k):
        for i in range(n):
            total += 2 * width_in + 9 * width_in * width + 2 * width + 9 * width * width
            total += width_in * width if (i == 0 and (width_in != width or width != 16 * k)) else 0
            width_in = width
    return total + 2 * width_in + width_in * classes + classes


def test_vgg16_features_are_torchvision_vgg16_bn_configuration_d():
    # Our make_layers and configuration D stand in for torchvision's (its import costs 1.2 s per job).
    from torchvision.models.vgg import cfgs, make_layers

    assert paper_models.VGG16_CONFIG == cfgs["D"]
    torch.manual_seed(0)
    ours = paper_models.make_layers(cfgs["D"], batch_norm=True)
    torch.manual_seed(0)
    theirs = make_layers(cfgs["D"], batch_norm=True)
    assert repr(ours) == repr(theirs)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    assert repr(paper_models.make_layers([8, "M"], batch_norm=False)) == repr(make_layers([8, "M"], batch_norm=False))


def test_wrn_16_8_has_the_papers_11_million_parameters():
    model = paper_models.WideResNet(depth=16, width=8, num_classes=10)
    assert count_parameters(model) == wrn_parameters(16, 8, 10)
    assert round(count_parameters(model) / 1e6, 1) == 11.0  # Zagoruyko & Komodakis 2016 list WRN-16-8 at 11.0M


def test_capsnet_has_the_papers_8_2_million_parameters():
    """Sabour et al. 2017, §5: 8.2M parameters, 6.8M without the reconstruction subnetwork."""
    conv1 = 9 * 9 * 1 * 256 + 256
    primary = 9 * 9 * 256 * 256 + 256
    digit = 1152 * 10 * 16 * 8  # 32·6·6 primary capsules, a 16×8 matrix per (primary, class)
    decoder = (160 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
    model = paper_models.CapsNet()
    assert count_parameters(model) == conv1 + primary + digit + decoder == 8_215_568
    assert round(count_parameters(model) / 1e6, 1) == 8.2
    assert round((count_parameters(model) - count_parameters(model.decoder)) / 1e6, 1) == 6.8


def test_vgg16_bn_conv_part_is_configuration_d_with_batch_norm():
    """Simonyan & Zisserman 2015, Table 1, configuration D: 13 3×3 convs (with bias) of 64, 64, 128, 128,
    256 ×3, 512 ×6 channels, each followed by batch norm (2 parameters per channel); 14,723,136 is also
    the count of torchvision's vgg16_bn().features. The CIFAR head is one Linear(512 → classes)."""
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    reference = sum(9 * c_in * c_out + c_out + 2 * c_out for c_in, c_out in zip(channels, channels[1:]))
    model = paper_models.VGG16(width=64, num_classes=100)
    assert count_parameters(model.features) == reference == 14_723_136
    assert count_parameters(model) == reference + 512 * 100 + 100


def test_lstm_medium_and_large_have_zarembas_20m_and_66m_parameters():
    """Merity et al. 2018 (AWD-LSTM), Table 1, lists Zaremba et al.'s medium and large PTB LSTMs as 20M
    and 66M. torch's LSTM has two bias vectors per layer where Zaremba's has one (8h vs 4h)."""
    def count(h, vocab=10000, layers=2):
        return vocab * h + layers * (4 * h * 2 * h + 8 * h) + h * vocab + vocab

    medium = paper_models.LSTMLanguageModel(width=650, dropout=0.5)
    large = paper_models.LSTMLanguageModel(width=1500, dropout=0.65)
    assert count_parameters(medium) == count(650) and count_parameters(large) == count(1500)
    assert round(count_parameters(medium) / 1e6) == 20 and round(count_parameters(large) / 1e6) == 66


def test_vae_parameters_from_its_layer_sizes():
    """Kingma & Welling's MNIST model: 784-500 encoder, 500-20 mean and log-variance, 20-500-784 decoder."""
    expected = (784 * 500 + 500) + 2 * (500 * 20 + 20) + (20 * 500 + 500) + (500 * 784 + 784)
    assert count_parameters(paper_models.VAE()) == expected == 815_824


def test_width_knobs_scale_the_models():
    wrn = [count_parameters(paper_models.build("wrn", k, depth=10)) for k in (1, 2)]
    assert wrn[0] < wrn[1]
    assert count_parameters(paper_models.build("vgg16_bn", 8)) < count_parameters(paper_models.build("vgg16_bn", 16))
    assert paper_models.build("capsnet", 16).n_primary == 2 * 6 * 6  # 16 channels = two maps of 8-D capsules
    assert paper_models.build("lstm_lm", 16, vocab_size=50).embedding.embedding_dim == 16


def test_bad_sizes_and_names_are_rejected():
    with pytest.raises(ValueError, match="6n \\+ 4"):
        paper_models.WideResNet(depth=15)
    with pytest.raises(ValueError, match="multiple of 8"):
        paper_models.CapsNet(width=12)
    with pytest.raises(ValueError, match="unknown model 'vgg19'.*vgg16_bn"):
        paper_models.build("vgg19")


def test_squash_keeps_direction_and_maps_length_to_s2_over_1_plus_s2():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    v = paper_models.squash(s)
    assert v[0].norm().item() == pytest.approx(25 / 26, rel=1e-6)
    assert torch.allclose(v[0] / v[0].norm(), torch.tensor([0.6, 0.8]))
    assert torch.equal(v[1], torch.zeros(2))


def test_batchify_and_bptt_windows_cut_the_stream_as_zaremba():
    streams = paper_models.batchify(torch.arange(11), 2)  # 10 tokens used: streams 0..4 and 5..9
    assert streams.tolist() == [[0, 5], [1, 6], [2, 7], [3, 8], [4, 9]]
    windows = list(paper_models.bptt_windows(streams, 3))
    assert [x.tolist() for x, _ in windows] == [[[0, 5], [1, 6], [2, 7]], [[3, 8]]]
    assert [y.tolist() for _, y in windows] == [[[1, 6], [2, 7], [3, 8]], [[4, 9]]]


TINY = {  # name: (model, inputs, loss, output shape)
    "vgg16_bn": (lambda: paper_models.VGG16(width=4, num_classes=100), torch.randn(4, 3, 32, 32), "ce", (4, 100)),
    "wrn": (lambda: paper_models.WideResNet(depth=10, width=1, num_classes=10), torch.randn(4, 3, 32, 32), "ce",
            (4, 10)),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_classifiers_shapes_and_a_training_step(name):
    build, x, _, shape = TINY[name]
    torch.manual_seed(0)
    model = build()
    y = torch.arange(len(x)) % shape[1]
    losses = overfit(model, lambda: torch.nn.functional.cross_entropy(model(x), y))
    assert model(x).shape == shape
    assert losses[-1] < losses[0]


def overfit(model, loss_fn, steps: int = 6) -> list[float]:
    """Adam steps on one batch; after the first backward every parameter has a finite gradient."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        if step == 0:
            for pname, p in model.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    return losses


def test_capsnet_shapes_routing_and_a_training_step():
    torch.manual_seed(0)
    model = paper_models.CapsNet(width=16, num_classes=10)
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([0, 3])
    lengths, recon = model(x, y)
    assert lengths.shape == (2, 10) and recon.shape == (2, 784)
    assert (lengths >= 0).all() and (lengths < 1).all()  # squashed capsule lengths
    assert ((recon >= 0) & (recon <= 1)).all()
    # The decoder sees only the chosen capsule: the label in training, the longest capsule otherwise.
    _, recon_pred = model(x)
    _, recon_longest = model(x, lengths.argmax(1))
    assert torch.allclose(recon_pred, recon_longest)

    def loss():
        lengths, recon = model(x, y)
        present = torch.nn.functional.one_hot(y, 10).float()
        margin = (present * (0.9 - lengths).clamp(min=0) ** 2
                  + 0.5 * (1 - present) * (lengths - 0.1).clamp(min=0) ** 2).sum(1)
        return (margin + 0.0005 * ((recon - x.flatten(1)) ** 2).sum(1)).mean()

    losses = overfit(model, loss, steps=4)
    assert losses[-1] < losses[0]


def test_lstm_shapes_state_and_a_training_step():
    torch.manual_seed(0)
    model = paper_models.LSTMLanguageModel(vocab_size=50, width=16, dropout=0.0)
    x = torch.randint(0, 50, (7, 3))
    logits, (h, c) = model(x)
    assert logits.shape == (7, 3, 50) and h.shape == c.shape == (2, 3, 16)
    # Carrying the state = running the concatenated sequence.
    first, state = model(x[:4])
    second, _ = model(x[4:], state)
    assert torch.allclose(torch.cat([first, second]), logits, atol=1e-6)
    y = torch.roll(x, -1, 0)
    losses = overfit(model, lambda: torch.nn.functional.cross_entropy(model(x)[0].reshape(-1, 50), y.reshape(-1)))
    assert losses[-1] < losses[0]


def test_vae_shapes_sampling_and_a_training_step():
    torch.manual_seed(0)
    model = paper_models.VAE(pixels=784, width=16, latent=4)
    x = torch.rand(5, 1, 28, 28)
    logits, mu, logvar = model(x)
    assert logits.shape == (5, 784) and mu.shape == logvar.shape == (5, 4)
    model.eval()  # z = mu: deterministic
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()

    def loss():
        logits, mu, logvar = model(x)
        recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum")
        return (recon - 0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum()) / len(x)

    losses = overfit(model, loss)
    assert losses[-1] < losses[0]
