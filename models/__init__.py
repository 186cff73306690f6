"""UU-Net training: networks, losses, data, export (PyTorch; never imported at run time)."""
