"""Da, the pairwise attribute matcher of the paper's Table I.

Input: two RGB crops concatenated on the channel axis (N x 6 x 64 x 64, values in [0, 1]).
Output: t sigmoids, one per label (ID, gender, ethnicity, hairstyle...): the probability that
the two faces agree on that label. One multi-head model replaces the paper's one-model-per-label
(an accepted variant, PAPER.md).

Table I: Conv(16, 3x3, s2)-BN-LReLU-Drop -> Conv(64, 3x3, s1)-BN-LReLU-Drop ->
Conv(128, 3x3, s1)-BN-LReLU-Drop -> 2 x [Conv(64, 3x3, s2)-BN-LReLU-Drop] -> Flatten ->
Dense(128)-ReLU -> Dense(t)-Sigmoid. Keras' BatchNormalization(momentum=0.8) keeps 80% of the
running average per step, which is PyTorch's ``momentum=0.2``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PairMatcher"]


def _block(in_ch: int, out_ch: int, stride: int, dropout: float) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1),
        nn.BatchNorm2d(out_ch, momentum=0.2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Dropout(dropout),
    ]


class PairMatcher(nn.Module):
    """Da(x, x') -> [0,1]^t agreement probabilities (Table I).

    Args:
        num_labels: t, the number of labels (heads).
        input_size: side of the square crops (64 in the paper).
        dropout: dropout rate after each conv block (0.25 in the paper).
    """

    def __init__(self, num_labels: int, input_size: int = 64, dropout: float = 0.25) -> None:
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        if input_size % 8:
            raise ValueError(f"input_size must be a multiple of 8, got {input_size}")
        self.num_labels = num_labels
        self.input_size = input_size
        self.features = nn.Sequential(
            *_block(6, 16, 2, dropout),
            *_block(16, 64, 1, dropout),
            *_block(64, 128, 1, dropout),
            *_block(128, 64, 2, dropout),
            *_block(64, 64, 2, dropout),
        )
        side = input_size // 8
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_labels),
        )

    def logits(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores, N x t (use with BCE-with-logits for a stable loss)."""
        return self.head(self.features(torch.cat([first, second], dim=1)))

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Agreement probabilities, N x t."""
        return torch.sigmoid(self.logits(first, second))
