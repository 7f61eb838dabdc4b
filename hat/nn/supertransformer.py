"""SuperTransformer: every SubTransformer of a search space shares the leading slices of one set of weights."""

from __future__ import annotations

import random
from typing import Optional

import torch

from hat.errors import SpaceError
from hat.nn.config import ModelConfig
from hat.nn.model import EncoderDecoderModel, check_subnet_fits, count_subnet_params
from hat.nn.transformer import Transformer
from hat.space import SearchSpace, SubnetConfig


class SuperTransformer(EncoderDecoderModel):
    """Weight-sharing supernet (HAT): built at the space's max dims, run as its *active* SubTransformer.

    Args:
        space: search space; its max dims size the weights, its ``qkv_dim`` the attention projections.
        cfg: vocabulary sizes, special symbols, dropout, norm placement.
        scale_dropout: as HAT, scale ``dropout`` and ``activation_dropout`` of each stack by
            ``active embed dim / max embed dim`` (narrower SubTransformers are regularized less). Attention dropout
            is not scaled. Extracted static models use the unscaled ``cfg`` values.

    The active subnet starts as ``space.largest()``.
    """

    def __init__(self, space: SearchSpace, cfg: ModelConfig, scale_dropout: bool = True):
        super().__init__()
        self.space = space
        self.scale_dropout = scale_dropout
        self._build(cfg, space.qkv_dim, space.max_encoder_embed_dim, space.max_decoder_embed_dim,
                    [space.max_encoder_ffn_embed_dim] * space.max_encoder_layer_num,
                    [space.max_decoder_ffn_embed_dim] * space.max_decoder_layer_num)
        self.active_subnet: SubnetConfig = space.largest()
        self.set_active_subnet(self.active_subnet)

    def _check_fits(self, subnet: SubnetConfig) -> None:
        # Anything that fits in the weights is allowed (e.g. a widened space's corners need not be choices here).
        s = self.space
        problems = []
        for g, cap in (("encoder_embed_dim", s.max_encoder_embed_dim), ("decoder_embed_dim", s.max_decoder_embed_dim),
                       ("encoder_layer_num", s.max_encoder_layer_num), ("decoder_layer_num", s.max_decoder_layer_num)):
            if getattr(subnet, g) > cap:
                problems.append(f"{g}={getattr(subnet, g)} > {cap}")
        for g, cap in (("encoder_ffn_embed_dim", s.max_encoder_ffn_embed_dim),
                       ("decoder_ffn_embed_dim", s.max_decoder_ffn_embed_dim)):
            for i, v in enumerate(getattr(subnet, g)):
                if v > cap or v <= 0:
                    problems.append(f"{g}[{i}]={v} not in (0, {cap}]")
        if problems:
            raise SpaceError(f"subnet does not fit SuperTransformer of space '{s.name}': {'; '.join(problems[:3])}")
        check_subnet_fits(subnet, s.qkv_dim, cfg=self.cfg)

    def set_active_subnet(self, subnet: SubnetConfig) -> None:
        """Make ``subnet`` the architecture that ``forward``/``encoder``/``decoder`` run.

        Raises:
            SpaceError: a dim exceeds the supernet's (ConfigError for heads not dividing qkv_dim).
        """
        self._check_fits(subnet)
        self._apply_subnet(subnet)
        if self.scale_dropout:
            c = self.cfg
            for stack, dim, cap in ((self.encoder, subnet.encoder_embed_dim, self.space.max_encoder_embed_dim),
                                    (self.decoder, subnet.decoder_embed_dim, self.space.max_decoder_embed_dim)):
                stack.set_dropout(c.dropout * dim / cap, c.activation_dropout * dim / cap)
        self.active_subnet = subnet

    def sample_active_subnet(self, rng: random.Random) -> SubnetConfig:
        """Sample a SubTransformer uniformly from the space with ``rng``, activate it and return it."""
        subnet = self.space.sample(rng)
        self.set_active_subnet(subnet)
        return subnet

    def get_active_subnet(self, subnet: Optional[SubnetConfig] = None) -> Transformer:
        """A standalone :class:`Transformer` holding copies of the (active or given) subnet's weight slices.

        Same device and dtype as the supernet, same train/eval mode; the supernet's active subnet is unchanged.
        """
        subnet = subnet or self.active_subnet
        self._check_fits(subnet)
        ref = self.encoder.embed_tokens.weight
        model = Transformer(subnet, self.cfg, self.qkv_dim).to(device=ref.device, dtype=ref.dtype)
        src = self.state_dict()
        with torch.no_grad():
            for name, dst in model.state_dict().items():
                s = src[name]
                # Every elastic weight is used through a leading slice in each dimension.
                dst.copy_(s[tuple(slice(0, n) for n in dst.shape)])
        model.train(self.training)
        return model

    def count_params(self, subnet: Optional[SubnetConfig] = None) -> int:
        """Parameters of the (active or given) subnet without embeddings and output projection (as HAT)."""
        return count_subnet_params(subnet or self.active_subnet, self.qkv_dim, self.cfg.normalize_before)


def space_fits(space: SearchSpace, supernet_space: SearchSpace) -> list[str]:
    """Why a SuperTransformer trained on ``supernet_space`` cannot serve a search of ``space`` (empty: it can): the
    same q/k/v width, and no dimension or layer count beyond the supernet's."""
    problems = []
    if space.qkv_dim != supernet_space.qkv_dim:
        problems.append(f"qkv_dim {space.qkv_dim} != {supernet_space.qkv_dim}")
    for name in ("max_encoder_embed_dim", "max_decoder_embed_dim", "max_encoder_ffn_embed_dim",
                 "max_decoder_ffn_embed_dim", "max_encoder_layer_num", "max_decoder_layer_num"):
        if getattr(space, name) > getattr(supernet_space, name):
            problems.append(f"{name} {getattr(space, name)} > {getattr(supernet_space, name)}")
    return problems
