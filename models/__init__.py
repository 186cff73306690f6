"""UU-Net training, export and evaluation (offline; may import ``shared``, never the reverse)."""
