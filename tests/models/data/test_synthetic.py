"""models.data.synthetic: labels that really change the look, sequences that move, round trips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.data.labels import VOCABULARIES
from models.data.synthetic import (
    SYNTHETIC_TONES,
    make_synthetic_faces,
    make_synthetic_tracklets,
    random_identity,
    random_scene,
    render_face,
)
from models.data.tracklet_folder import load_tracklet_folder


def face_centre(image):
    s = image.shape[0]
    return (
        image[int(0.42 * s) : int(0.58 * s), int(0.40 * s) : int(0.60 * s)]
        .reshape(-1, 3)
        .astype(np.float32)
    )


def test_skin_tone_label_changes_mean_skin_colour():
    rng = np.random.default_rng(0)
    means = {tone: [] for tone in SYNTHETIC_TONES}
    for i in range(6):
        base = random_identity(np.random.default_rng([1, i]))
        scene = random_scene(np.random.default_rng([2, i]))
        t = float(rng.uniform(0, 5))
        for tone, colour in SYNTHETIC_TONES.items():
            identity = dataclasses.replace(base, tone=tone, skin=colour)
            means[tone].append(face_centre(render_face(identity, scene, t, 64)).mean())
    m = {tone: float(np.mean(v)) for tone, v in means.items()}
    assert m["white"] > m["asian"] > m["indian"] > m["black"], m
    assert m["white"] > m["black"] + 60, m


def test_hairstyle_label_changes_how_much_hair_is_seen():
    # Light background and clothes, black hair: dark pixels are hair, eyes and brows.
    scene = dataclasses.replace(
        random_scene(np.random.default_rng(3)),
        background=((0.8, 0.8, 0.8), (0.7, 0.7, 0.75)),
        shapes=(),
        clothing=(0.8, 0.7, 0.6),
    )
    base = dataclasses.replace(
        random_identity(np.random.default_rng(4), gender="female"),
        hair=(0.04, 0.04, 0.04),
        skin=(0.9, 0.75, 0.65),
    )
    dark = {}
    for style in ("bald", "short", "long", "bangs"):
        image = render_face(dataclasses.replace(base, hairstyle=style), scene, 1.0, 64)
        dark[style] = int((image.max(axis=2) < 45).sum())
    assert dark["bald"] + 150 < dark["short"] < dark["bangs"] < dark["long"], dark


def test_gender_like_label_changes_the_face_on_average():
    redness = {"male": [], "female": []}
    for i in range(12):
        scene = random_scene(np.random.default_rng([5, i]))
        for gender in redness:
            identity = random_identity(
                np.random.default_rng([6, i]), gender=gender, tone="white", hairstyle="bald"
            )
            identity = dataclasses.replace(identity, hair=(0.12, 0.1, 0.08))
            image = render_face(identity, scene, 0.0, 64).astype(np.float32)
            lower = image[36:50, 22:42]  # mouth and chin
            redness[gender].append(float((lower[..., 0] - lower[..., 1]).mean()))
    female, male = np.mean(redness["female"]), np.mean(redness["male"])
    assert female > male + 5, (female, male)


def test_frames_of_a_sequence_change_a_little_sequences_change_more():
    pack = make_synthetic_faces(2, sequences=2, frames=6, size=64, seed=8)
    img = pack.images.astype(np.float32)
    within = np.mean([np.abs(img[k] - img[k + 1]).mean() for k in range(5)])
    across = np.abs(img[0] - img[6]).mean()  # same subject, other sequence (scene)
    assert 0.5 < within < across, (within, across)


def test_in_memory_faces_labels_and_determinism():
    a = make_synthetic_faces(5, sequences=(1, 3), frames=(2, 4), size=32, seed=1)
    b = make_synthetic_faces(5, sequences=(1, 3), frames=(2, 4), size=32, seed=1)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert a.label_names == ("id", "gender", "ethnicity", "hairstyle")
    assert np.array_equal(a.labels[:, 0], a.subject)
    for s in range(5):
        identity = random_identity(np.random.default_rng([1, s]))
        rows = a.labels[a.subject == s]
        assert (
            rows[:, 1:] == [identity.labels()[n] for n in ("gender", "ethnicity", "hairstyle")]
        ).all()
    c = make_synthetic_faces(5, sequences=(1, 3), frames=(2, 4), size=32, seed=2)
    assert not np.array_equal(a.images[:2], c.images[:2])


def test_tracklet_folder_round_trip(tmp_path):
    folder = make_synthetic_tracklets(
        tmp_path / "synth", n_subjects=3, sequences=2, frames=3, size=32, seed=7
    )
    tracklets = load_tracklet_folder(folder.tracklets_root, folder.labels_csv)
    assert len(tracklets) == 6 and all(len(t) == 3 for t in tracklets)
    memory = make_synthetic_faces(3, sequences=2, frames=3, size=32, seed=7)
    for t in tracklets:
        s = int(t.subject[1:])
        expected = memory.labels[memory.subject == s][0]
        assert [t.labels["gender"], t.labels["ethnicity"], t.labels["hairstyle"]] == expected[
            1:
        ].tolist()
    assert {VOCABULARIES["hairstyle"][t.labels["hairstyle"]] for t in tracklets} <= {
        "bald",
        "short",
        "long",
        "bangs",
    }
    with pytest.raises(FileExistsError):
        make_synthetic_tracklets(tmp_path / "synth", n_subjects=1)


def test_generator_argument_errors():
    with pytest.raises(ValueError):
        make_synthetic_faces(0)
    with pytest.raises(ValueError):
        make_synthetic_faces(1, sequences=(3, 1))
    with pytest.raises(ValueError, match="unknown identity class"):
        random_identity(np.random.default_rng(0), tone="green")
