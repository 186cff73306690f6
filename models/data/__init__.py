"""Training data for UU-Net: loaders, crop rules, packing, the torch dataset and PJK sampler.

Typical use::

    from models.data import load_lfw, load_celeba, load_utkface, pack_tracklets, PackedFaces
    tracklets = load_lfw(lfw_root, gender_csv) + load_celeba(celeba_root, index_csv)
    tracklets += load_videos("footage/")  # faces through the edge's detector and tracker
    pack_tracklets(tracklets, "faces64.npz", size=64)
    pack = PackedFaces.open("faces64.npz")
    train, held_out = pack.split_subjects(0.1, seed=0)
    dataset = FaceSequenceDataset(pack, subjects=train, jitter=VideoJitter())
    sampler = PJKBatchSampler(dataset, P=8, J=2, K=4, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)

Every module documents its dataset layout, crop geometry and label mapping.
"""

from .celeba import CELEBA_ALIGNED_CROP, load_celeba
from .crops import CropRule, FaceToHead, FullFrame, HeadTop, RelativeBox, crop_box
from .dataset import FaceSequenceDataset, FrameKey
from .errors import (
    AnnotationError,
    DatasetError,
    DatasetLayoutError,
    EmptySequenceError,
    ImageReadError,
    LabelsFileError,
    PackFormatError,
    TooManyUnreadableError,
)
from .jitter import VideoJitter
from .labels import DEFAULT_LABEL_NAMES, VOCABULARIES
from .lfw import load_lfw
from .mars import load_mars
from .pack import PackedFaces, pack_tracklets
from .pdestre import PDESTRE_FORMAT, PdestreFormat, load_pdestre
from .sampler import PJKBatchSampler, same_subject_and_sequence
from .summary import summarise, summarise_arrays
from .synthetic import make_synthetic_faces, make_synthetic_tracklets
from .tracklet import SOURCES, SourceInfo, Tracklet
from .tracklet_folder import load_tracklet_folder
from .utkface import load_utkface
from .videos import load_videos
from .youtube_faces import load_youtube_faces

__all__ = [
    "CELEBA_ALIGNED_CROP",
    "DEFAULT_LABEL_NAMES",
    "PDESTRE_FORMAT",
    "SOURCES",
    "VOCABULARIES",
    "AnnotationError",
    "CropRule",
    "DatasetError",
    "DatasetLayoutError",
    "EmptySequenceError",
    "FaceSequenceDataset",
    "FaceToHead",
    "FrameKey",
    "FullFrame",
    "HeadTop",
    "ImageReadError",
    "LabelsFileError",
    "PJKBatchSampler",
    "PackFormatError",
    "PackedFaces",
    "PdestreFormat",
    "RelativeBox",
    "SourceInfo",
    "TooManyUnreadableError",
    "Tracklet",
    "VideoJitter",
    "crop_box",
    "load_celeba",
    "load_lfw",
    "load_mars",
    "load_pdestre",
    "load_tracklet_folder",
    "load_utkface",
    "load_videos",
    "load_youtube_faces",
    "make_synthetic_faces",
    "make_synthetic_tracklets",
    "pack_tracklets",
    "same_subject_and_sequence",
    "summarise",
    "summarise_arrays",
]
