"""models.losses: each term's value and the direction one gradient step moves it."""

from __future__ import annotations

import pytest
import torch

from models import losses

torch.manual_seed(0)


def _descend(param: torch.Tensor, loss_fn, lr: float = 0.1, steps: int = 5) -> tuple[float, float]:
    """Loss before and after a few plain gradient steps on ``param``."""
    before = float(loss_fn(param).detach())
    for _ in range(steps):
        param.grad = None
        loss = loss_fn(param)
        loss.backward()
        with torch.no_grad():
            param -= lr * param.grad
    return before, float(loss_fn(param).detach())


def test_reconstruction_loss_falls_as_r_moves_to_x():
    x = torch.rand(2, 3, 8, 8)
    r = torch.rand(2, 3, 8, 8, requires_grad=True)
    before, after = _descend(r, lambda p: losses.reconstruction_loss(x, p), lr=50.0)
    assert after < before * 0.5
    assert float(losses.reconstruction_loss(x, x)) == 0.0


class _Linear(torch.nn.Module):
    """A tiny per-image critic: mean of a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(1, 2, 3))


def test_critic_loss_step_separates_real_from_fake():
    torch.manual_seed(0)  # the outcome of 3 SGD steps depends on the initial weights
    critic = _Linear()
    real, fake = torch.full((4, 3, 4, 4), 0.8), torch.full((4, 3, 4, 4), 0.2)
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)

    def loss() -> torch.Tensor:
        return losses.critic_loss(critic(real), critic(fake), critic(fake))

    before = float(loss())
    for _ in range(20):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert float(loss()) < before
    assert float(critic(real).mean()) > float(critic(fake).mean())


def test_generator_adversarial_loss_raises_critic_scores():
    critic = _Linear()
    with torch.no_grad():
        critic.conv.weight.fill_(1.0)
    a = torch.rand(2, 3, 4, 4, requires_grad=True)
    scores_before = float(critic(a).mean())
    before, after = _descend(a, lambda p: losses.generator_adversarial_loss(critic(p), critic(p)))
    assert after < before and float(critic(a).mean()) > scores_before


def test_gradient_penalty_zero_for_unit_gradient_and_trains_critic_toward_it():
    critic = _Linear()
    real, fake = torch.rand(8, 3, 4, 4), torch.rand(8, 3, 4, 4)
    # Mean over 48 inputs of a 1x1 conv with weight w per channel: gradient norm = |w| / 4.
    with torch.no_grad():
        critic.conv.weight.fill_(4.0 / 3**0.5)
    assert float(losses.gradient_penalty(critic, real, fake)) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        critic.conv.weight.fill_(20.0)
    opt = torch.optim.SGD(critic.parameters(), lr=1.0)
    before = float(losses.gradient_penalty(critic, real, fake))
    for _ in range(30):
        opt.zero_grad()
        losses.gradient_penalty(critic, real, fake).backward()
        opt.step()
    assert float(losses.gradient_penalty(critic, real, fake).detach()) < before * 0.1


class _FakeMatcher(torch.nn.Module):
    """Agreement = sigmoid(k * (1 - |mean(p) - mean(q)|) - k/2) per label: differentiable."""

    def __init__(self, t: int = 4) -> None:
        super().__init__()
        self.t = t

    def forward(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        diff = (p.mean(dim=(1, 2, 3)) - q.mean(dim=(1, 2, 3))).abs()
        return torch.sigmoid(10 * (0.1 - diff)).unsqueeze(1).repeat(1, self.t)


def test_anonymization_loss_direction_follows_s():
    matcher = _FakeMatcher()
    x = torch.full((2, 3, 4, 4), 0.5)
    # s = -1 everywhere (change every label): descending pushes a away from x.
    a = (x + 0.01).clone().requires_grad_(True)
    s_change = torch.tensor([-1.0, -1.0, -1.0, -1.0])
    before, after = _descend(a, lambda p: losses.anonymization_loss(matcher, x, p, s_change))
    assert after < before
    assert float(matcher(x, a).mean()) < float(matcher(x, x + 0.01).mean())
    # s = +1 on all labels (keep): descending pulls a toward x (agreement rises).
    a2 = (x + 0.3).clone().requires_grad_(True)
    s_keep = torch.tensor([1.0, 1.0, 1.0, 1.0])
    agree_before = float(matcher(x, a2).mean())
    _descend(a2, lambda p: losses.anonymization_loss(matcher, x, p, s_keep), lr=0.5, steps=20)
    assert float(matcher(x, a2).mean()) > agree_before


def test_anonymization_loss_ignores_zero_entries():
    matcher = _FakeMatcher()
    x, a = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    assert float(losses.anonymization_loss(matcher, x, a, torch.zeros(4))) == 0.0


def test_temporal_consistency_pulls_frames_of_a_sequence_together():
    matcher = _FakeMatcher()
    a = torch.stack([torch.full((3, 4, 4), v) for v in (0.2, 0.5, 0.2, 0.5)]).requires_grad_(True)
    sequence = torch.tensor([0, 0, 1, 1])
    mask = torch.ones(4)
    spread_before = float((a[0] - a[1]).abs().mean())
    _descend(
        a, lambda p: losses.temporal_consistency_loss(matcher, p, sequence, mask), lr=0.5, steps=30
    )
    assert float((a[0] - a[1]).abs().mean()) < spread_before


def test_temporal_consistency_without_pairs_is_zero_with_graph():
    a = torch.rand(3, 3, 4, 4, requires_grad=True)
    out = losses.temporal_consistency_loss(
        _FakeMatcher(), a, torch.tensor([0, 1, 2]), torch.ones(4)
    )
    assert float(out) == 0.0 and out.requires_grad


def test_diversity_pushes_sequences_of_a_subject_apart_only():
    matcher = _FakeMatcher()
    a = torch.stack([torch.full((3, 4, 4), 0.5) for _ in range(4)])
    a = (a + torch.tensor([0.0, 0.01, 0.02, 0.03]).view(4, 1, 1, 1)).requires_grad_(True)
    subject = torch.tensor([0, 0, 1, 1])
    sequence = torch.tensor([0, 1, 2, 3])
    mask = torch.tensor([1.0, 0.0, 0.0, 0.0])
    gap01, gap12 = float((a[0] - a[1]).abs().mean()), float((a[1] - a[2]).abs().mean())
    _descend(
        a, lambda p: losses.diversity_loss(matcher, p, subject, sequence, mask), lr=0.5, steps=20
    )
    assert float((a[0] - a[1]).abs().mean()) > gap01
    # Items 1 and 2 belong to different subjects: no term pushes them apart directly.
    assert float(losses.diversity_loss(matcher, a, subject, sequence, torch.zeros(4))) == 0.0
    assert gap12 >= 0


def test_soft_histogram_is_normalised_and_differentiable():
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    hist = losses.soft_histogram(images, bins=8)
    assert hist.shape == (2, 3, 8)
    torch.testing.assert_close(hist.sum(-1), torch.ones(2, 3))
    hist[:, :, 0].sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_colour_distribution_loss_matches_colours():
    x = torch.full((2, 3, 8, 8), 0.6)
    a = torch.full((2, 3, 8, 8), 0.4).requires_grad_(True)
    before, after = _descend(
        a, lambda p: losses.colour_distribution_loss(x, p, bins=8), lr=0.05, steps=40
    )
    assert after < before
    assert float(a.mean()) > 0.4
    assert float(losses.colour_distribution_loss(x, x)) == pytest.approx(0.0, abs=1e-6)


def test_chi_square_known_value():
    h1, h2 = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])
    assert float(losses.chi_square(h1, h2)) == pytest.approx(0.25 / 1.5 + 0.25 / 0.5, rel=1e-5)


@pytest.mark.parametrize(
    ("s", "match"),
    [((-1, 1, 1), "labels"), ((-1, 2, 0, 0), "-1, 0 or 1"), ((1, 1, 1, 0), "must be -1")],
)
def test_check_s_vector_rejects_bad_vectors(s, match):
    with pytest.raises(ValueError, match=match):
        losses.check_s_vector(s, ["id", "gender", "ethnicity", "hairstyle"])


def test_pairs_subset_is_capped_and_drawn_from_valid_pairs():
    sequence = torch.arange(12) // 4  # 3 sequences of 4 frames: 18 same-sequence pairs
    all_pairs = losses._pairs(sequence, same=True)
    assert all_pairs.shape[1] == 18
    some = losses._pairs(sequence, same=True, max_pairs=5)
    assert some.shape[1] == 5
    assert bool((sequence[some[0]] == sequence[some[1]]).all())


def _face_like(n: int = 2, size: int = 32) -> torch.Tensor:
    """Smooth colour with some grey fine detail, like a face crop (chroma energy well above 0)."""
    across = torch.linspace(0, 1, size).expand(size, size)
    base = torch.stack([0.6 + 0.2 * across, 0.45 + 0.1 * across.T, 0.4 + 0 * across])
    detail = 0.03 * torch.randn(n, 1, size, size)
    tint = 0.01 * torch.randn(n, 3, size, size)
    return (base[None] + detail + tint).clamp(0, 1)


def _ratios(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return (losses.high_frequency_energy(a) / losses.high_frequency_energy(x)).mean(dim=0)


def test_high_frequency_band_loss_leaves_a_real_like_face_alone_and_caps_chroma_speckle():
    x = _face_like()
    assert float(losses.high_frequency_band_loss(x, x)) == 0.0
    sharper = (x + 0.012 * torch.randn(2, 1, 32, 32)).clamp(0, 1)  # luma ratio inside 0.7-1.5
    assert 1.0 < float(_ratios(x, sharper)[0]) < 1.5
    assert float(losses.high_frequency_band_loss(x, sharper)) == 0.0
    assert float(losses.high_frequency_loss(x, sharper)) > 0.0  # "match" still pulls it
    speckled = (x + 0.08 * torch.randn(2, 3, 32, 32)).clamp(0, 1)
    assert float(_ratios(x, speckled)[1:].min()) > 2.0
    assert float(losses.high_frequency_band_loss(x, speckled)) > 0.0

    a = speckled.clone().requires_grad_(True)
    before, after = _descend(a, lambda p: losses.high_frequency_band_loss(x, p), lr=0.02)
    assert after < before
    assert float(_ratios(x, a.detach())[1:].max()) < float(_ratios(x, speckled)[1:].max())


def test_high_frequency_band_loss_asks_a_smeared_face_for_its_detail_back():
    x = _face_like()
    smeared = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    assert float(_ratios(x, smeared)[0]) < 0.7
    assert float(losses.high_frequency_band_loss(x, smeared)) > 0.0


def test_high_frequency_band_loss_refuses_a_band_that_is_not_one():
    x = _face_like()
    with pytest.raises(ValueError, match="bad band"):
        losses.high_frequency_band_loss(x, x, luma_band=(1.5, 0.7))
    with pytest.raises(ValueError, match="bad band"):
        losses.high_frequency_band_loss(x, x, chroma_max=0.0)


def test_gaussian_blur_keeps_a_flat_image_and_smooths_a_checkerboard():
    flat = torch.full((1, 3, 12, 12), 0.4)
    assert torch.allclose(losses.gaussian_blur(flat, 1.5), flat, atol=1e-6)
    checker = (torch.arange(12).view(1, -1) + torch.arange(12).view(-1, 1)) % 2
    board = checker.float().expand(1, 3, 12, 12)
    assert float((losses.gaussian_blur(board, 1.5) - 0.5).abs().max()) < 0.02
    with pytest.raises(ValueError, match="sigma"):
        losses.gaussian_blur(flat, 0.0)


def test_anchor_loss_ignores_fine_detail_and_sees_a_coarse_change():
    torch.manual_seed(0)
    reference = torch.rand(2, 3, 32, 32)
    checker = ((torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2).float()
    speckle_removed = reference + 0.2 * (checker - 0.5)  # only the finest scale differs
    shifted = reference.clone()
    shifted[:, :, :16] += 0.2  # the top half another colour
    assert float(losses.anchor_loss(reference, reference, 1.5)) == 0.0
    fine = float(losses.anchor_loss(speckle_removed, reference, 1.5))
    coarse = float(losses.anchor_loss(shifted, reference, 1.5))
    assert fine < 0.005 and coarse > 0.08
    with pytest.raises(ValueError, match="differ"):
        losses.anchor_loss(reference, reference[:, :, :16], 1.5)
