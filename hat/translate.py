"""Load any translation checkpoint (hat or fairseq) as an eval-mode model ready for decoding (PyTorch side).

Used by ``hat-translate --checkpoint``, ``hat-export`` and the benchmarks; the torch-free side is
:mod:`hat.runtime` (``hat-translate --onnx``).
"""

from __future__ import annotations

import os
from typing import Optional

from hat.errors import HatError


def load_any_model(path: str | os.PathLike, subnet_path: Optional[str | os.PathLike] = None):
    """Load a hat or fairseq checkpoint as an eval-mode model ready for decoding.

    A SuperTransformer is reduced to the subnet of ``subnet_path`` (required for it).

    Raises:
        HatError: unreadable checkpoint, a SuperTransformer without a subnet, or a subnet other than a static
            model's own architecture.
    """
    from hat.train.checkpoint import load_model

    if not os.path.isfile(path):
        raise HatError(f"{path}: no such checkpoint")
    # load_model tells hat checkpoints (model_config/space keys) from fairseq ones (args/cfg keys).
    model, _ = load_model(str(path))
    if hasattr(model, "get_active_subnet"):
        if not subnet_path:
            raise HatError(f"{path} holds a SuperTransformer: pass --subnet subnet.yaml to pick a SubTransformer")
        from hat.space import SubnetConfig
        subnet = SubnetConfig.load_yaml(subnet_path)
        model.space.check(subnet)
        model = model.get_active_subnet(subnet)
    elif subnet_path:
        # Accepted when it names the checkpoint's own architecture (HAT's generate.py always takes --configs).
        from hat.space import SubnetConfig
        if SubnetConfig.load_yaml(subnet_path) != model.subnet:
            raise HatError(f"{path} holds a static Transformer of another architecture than --subnet {subnet_path}; "
                           f"--subnet selects a SubTransformer of SuperTransformer checkpoints only")
    return model.eval()
