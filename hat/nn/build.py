"""The one place a network is constructed from objects: a SuperTransformer over a space, or a static SubTransformer."""

from __future__ import annotations


def network(space, model_cfg, subnet=None):
    """A SuperTransformer over ``space`` (``subnet`` None) or the static Transformer of ``subnet``; fresh weights."""
    from hat.nn.supertransformer import SuperTransformer
    from hat.nn.transformer import Transformer
    if subnet is None:
        return SuperTransformer(space, model_cfg)
    return Transformer(subnet, model_cfg, space.qkv_dim)
