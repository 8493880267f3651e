"""Every torchvision classification model against its weights' published counts (kernels.zoo.torchvision_check:
parameters exactly, MACs of convolutions and matrix products within 1% or the 3-decimal rounding). The whole set is
marked slow (`pytest -m slow tests/`); a subset runs by default."""
import pytest

torchvision = pytest.importorskip("torchvision")

from kernels.zoo import torchvision_check  # noqa: E402

FAST = ["resnet50", "mobilenet_v2", "vit_b_16", "regnet_x_400mf", "googlenet", "swin_t", "convnext_tiny",
        "shufflenet_v2_x0_5", "efficientnet_b0", "inception_v3"]


def _check(name):
    row = torchvision_check([name]).iloc[0]
    assert row["params_ok"], (name, row["params"], row["params_published"])
    assert row["macs_ok"], (name, row["gmac"], row["gmac_published"])


@pytest.mark.parametrize("name", FAST)
def test_published_counts_fast_subset(name):
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", torchvision.models.list_models(module=torchvision.models))
def test_published_counts_all_classification_models(name):
    _check(name)
