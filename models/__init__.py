"""UU-Net learning (PyTorch, offline): Da, Ue/Ud, the critic, losses, data, training, export."""
