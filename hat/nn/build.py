"""The one place a network is constructed from objects: a SuperTransformer over a space, or a static SubTransformer;
and the check that a checkpoint's description of one is not larger than the weights it holds."""

from __future__ import annotations

from hat.errors import HatError

# Tables that are computed, not stored (sinusoidal positions), may take at most this much memory: a checkpoint
# declaring max_*_positions in the millions is refused before they are built.
MAX_TABLE_BYTES = 1 << 30


def network(space, model_cfg, subnet=None):
    """A SuperTransformer over ``space`` (``subnet`` None) or the static Transformer of ``subnet``; fresh weights."""
    from hat.nn.supertransformer import SuperTransformer
    from hat.nn.transformer import Transformer
    if subnet is None:
        return SuperTransformer(space, model_cfg)
    return Transformer(subnet, model_cfg, space.qkv_dim)


def check_declared_size(space, model_cfg, subnet, state_dict: dict, where: str) -> None:
    """Refuse, before allocating anything, a model description larger than the weights that come with it.

    The network is built on torch's ``meta`` device (shapes only, no memory): its parameters must not outnumber the
    values in ``state_dict`` (a checkpoint whose space or args describe a 40 GB model holds 40 GB of weights, or is
    refused here), and its computed tables (positions) must stay under :data:`MAX_TABLE_BYTES`.

    Raises:
        HatError: one line with both sizes.
    """
    import torch
    for side in ("encoder", "decoder"):
        declared = getattr(subnet, f"{side}_layer_num") if subnet is not None else \
            getattr(space, f"max_{side}_layer_num")
        held = layers_held(state_dict, side)
        if declared > held:
            raise HatError(f"{where}: describes {declared:,} {side} layers but its weights hold {held}; refused "
                           f"before building it")
    with torch.device("meta"):
        model = network(space, model_cfg, subnet)
    need = sum(p.numel() for p in model.parameters())
    tables = sum(b.numel() * b.element_size() for b in model.buffers())
    have = sum(t.numel() for t in state_dict.values() if isinstance(t, torch.Tensor))
    if tables > MAX_TABLE_BYTES:
        raise HatError(f"{where}: declares computed tables of {tables / 2**30:.1f} GiB (max_source_positions "
                       f"{model_cfg.max_source_positions:,}, max_target_positions "
                       f"{model_cfg.max_target_positions:,}); refused before allocating them")
    if need > 1.01 * have + 4096:
        raise HatError(f"{where}: describes a model of {need:,} parameters but holds only {have:,} weight values; "
                       f"refused before allocating it")


def layers_held(state_dict: dict, side: str) -> int:
    """How many ``<side>.layers.<i>.`` blocks a state dict holds (1 + the highest index; 0 for none)."""
    import re
    pattern = re.compile(rf"^{side}\.layers\.(\d+)\.")
    return max((int(m.group(1)) + 1 for k in state_dict if (m := pattern.match(str(k)))), default=0)
