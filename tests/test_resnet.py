"""Models: the known parameter counts, torchvision compatibility, widths."""

import pytest
import torch
import torchvision

from optimbench.resnet import ArticleResNet18, ResNet18, build_model, count_parameters


def test_cifar_resnet18_has_the_known_parameter_count():
    assert count_parameters(build_model("resnet18_cifar", 64, 10)) == 11_173_962


def test_imagenet_backbone_matches_torchvision_resnet18():
    ours, theirs = ResNet18("imagenet", 64, 1000), torchvision.models.resnet18()
    assert count_parameters(ours) == count_parameters(theirs) == 11_689_512
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_seeded_backbone_is_torchvision_resnet18_weight_for_weight_and_output_for_output():
    # Our BasicBlock stands in for torchvision's (its import costs 1.2 s per job): same modules, same order,
    # so a seed draws the same initial weights, and the same forward pass.
    torch.manual_seed(0)
    ours = ResNet18("imagenet", 64, 1000).eval()
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18().eval()
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    assert all(torch.equal(ours_state[k], theirs_state[k]) for k in theirs_state)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_cifar_model_uses_torchvision_basic_blocks_layer_for_layer():
    from torchvision.models.resnet import BasicBlock as TorchvisionBlock

    ours = build_model("resnet18_cifar", 8, 10)
    torch.manual_seed(1)
    block = ours.layer2[0]
    torch.manual_seed(1)
    reference = TorchvisionBlock(8, 16, 2, block.downsample)
    assert repr(block) == repr(reference)
    reference.load_state_dict(block.state_dict())
    x = torch.randn(3, 8, 16, 16)
    torch.testing.assert_close(block.eval()(x), reference.eval()(x), rtol=0, atol=0)


def test_article_model_is_resnet18_plus_a_1000_to_10_head():
    model = build_model("resnet18_article", 64, 10)
    assert isinstance(model, ArticleResNet18)
    assert (model.head.in_features, model.head.out_features) == (1000, 10)
    assert count_parameters(model) == 11_689_512 + 1000 * 10 + 10


def test_pretrained_weights_load_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = build_model("resnet18_article", 64, 10, pretrained=str(tmp_path / "resnet18.pth")).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.backbone(x), reference(x))


def test_missing_pretrained_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train.pretrained = '.*missing.pth' does not exist.*pretrained: null"):
        build_model("resnet18_article", 64, 10, pretrained=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("name", ["resnet18_article", "resnet18_cifar"])
def test_tiny_widths_run(name):
    model = build_model(name, 4, 10)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert count_parameters(model) < count_parameters(build_model(name, 8, 10))


def test_cifar_stem_keeps_the_resolution():
    model = ResNet18("cifar", 8, 10)
    features = model.relu(model.bn1(model.conv1(torch.randn(1, 3, 32, 32))))
    assert model.maxpool(features).shape[-2:] == (32, 32)


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg")


def test_incompatible_pretrained_file_names_what_differs(tmp_path):
    """A width-8 backbone's weights (the right keys, other shapes) are refused by the trainer's model too."""
    from optimbench.resnet import PretrainedError

    torch.save(ResNet18("imagenet", 8, 1000).state_dict(), tmp_path / "narrow.pth")
    with pytest.raises(PretrainedError, match=r"narrow.pth' is not torchvision's resnet18 state_dict: 101 shapes "
                                              r"differ: \['conv1.weight \(8, 3, 7, 7\) "
                                              r"\(expected \(64, 3, 7, 7\)\)', .*\] and 97 more\. "):
        build_model("resnet18_article", 64, 10, pretrained=str(tmp_path / "narrow.pth"))
