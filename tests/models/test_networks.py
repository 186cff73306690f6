"""models.networks: shapes, ranges, factories, and the properties the product relies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.networks import define_critic, define_matcher, define_unet
from models.networks.unet import NoiseStyle, UNet


def test_matcher_is_table_one_with_t_sigmoids():
    matcher = define_matcher(num_labels=4, input_size=64).eval()
    out = matcher(torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64))
    assert out.shape == (3, 4) and bool(((out > 0) & (out < 1)).all())
    convs = [m for m in matcher.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride[0]) for c in convs] == [
        (16, 2),
        (64, 1),
        (128, 1),
        (64, 2),
        (64, 2),
    ]
    bns = [m for m in matcher.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(b.momentum == pytest.approx(0.2) for b in bns)  # Keras momentum 0.8
    dense = [m for m in matcher.head if isinstance(m, torch.nn.Linear)]
    assert [d.out_features for d in dense] == [128, 4]


@pytest.mark.parametrize(("channels", "size"), [(4, 64), (3, 64), (4, 16)])
def test_unet_maps_unit_range_to_unit_range(channels, size):
    net = define_unet(in_channels=channels, width=8, input_size=size).eval()
    out = net(torch.rand(2, channels, size, size))
    assert out.shape == (2, 3, size, size)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_unet_output_of_a_face_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    net = define_unet(in_channels=4, width=8, input_size=32).train()  # GroupNorm: per sample
    x = torch.rand(4, 4, 32, 32)
    alone = net(x[:1])
    together = net(x)[:1]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-6)
    net.eval()
    torch.testing.assert_close(net(x[:1]), alone, rtol=1e-5, atol=1e-6)  # no train/eval gap


def test_max_multiplier_caps_the_deep_widths():
    full = sum(p.numel() for p in UNet(4, width=32).parameters())
    capped = sum(p.numel() for p in UNet(4, width=32, max_multiplier=4).parameters())
    assert full == 7_315_267 and capped < full / 2.5


def test_critic_scores_patches_without_batchnorm():
    critic = define_critic(width=8, layers=3)
    assert critic(torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert critic.score(torch.rand(2, 3, 64, 64)).shape == (2,)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    with pytest.raises(ValueError, match="not batch"):
        define_critic(norm="batch")


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [(define_matcher, {"num_labels": 4}), (define_unet, {"in_channels": 4}), (define_critic, {})],
)
def test_factories_refuse_unknown_names(factory, kwargs):
    with pytest.raises(ValueError, match="unknown"):
        factory("resnet9000", **kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"input_size": 48}, {"width": 0}, {"norm": "layer"}, {"max_multiplier": 0}]
)
def test_unet_refuses_bad_settings(kwargs):
    with pytest.raises(ValueError):
        UNet(4, **kwargs)


def test_a_track_keeps_its_noise_code_at_every_model_size():
    from edge_agent.noise import NoiseBank

    bank = NoiseBank(b"secret-" * 5, 64)
    base, big = bank.plane(3), bank.plane(3, 128)
    assert big.shape == (128, 128) and np.array_equal(big[::2, ::2], base)
    style = NoiseStyle(16)
    as_tensor = lambda p: torch.from_numpy(p)[None, None]  # noqa: E731
    torch.testing.assert_close(style.latent(as_tensor(base)), style.latent(as_tensor(big)))
    other = style.latent(as_tensor(bank.plane(4)))
    assert float((other - style.latent(as_tensor(base))).abs().max()) > 0.1
    with pytest.raises(ValueError, match="multiple"):
        bank.plane(3, 96)


def test_ue_noise_chooses_the_surrogate_and_runs_at_twice_its_size():
    torch.manual_seed(0)
    net = define_unet(in_channels=4, width=8, input_size=32, noise_code=16).eval()
    x = torch.rand(2, 3, 32, 32)
    first, second = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        a1 = net(torch.cat([x, first], 1))
        a2 = net(torch.cat([x, second], 1))
        big = net(torch.rand(2, 4, 64, 64))
    assert float((a1 - a2).abs().mean()) > 1e-3  # the code modulates every decoder level
    assert big.shape == (2, 3, 64, 64)
