"""Code both runtime sides use: ROI message, LSB stego, geometry, ONNX runner, settings."""
