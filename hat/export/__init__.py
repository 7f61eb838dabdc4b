"""Deployment export (owner: latency for ``onnx.py``). Submodules are imported where used (torch/onnx are heavy)."""
