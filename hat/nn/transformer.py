"""Static Transformer: one SubTransformer with its own (unshared) weights, e.g. extracted from a supernet."""

from __future__ import annotations

from hat.nn.config import ModelConfig
from hat.nn.model import EncoderDecoderModel, check_subnet_fits, count_subnet_params
from hat.space import SubnetConfig


class Transformer(EncoderDecoderModel):
    """A fixed-architecture encoder-decoder Transformer (fairseq parameter names).

    Layers have exactly the subnet's widths (per-layer FFN dims and heads may differ), so nothing is sliced at run
    time; only with ``share_all_embeddings`` and different encoder/decoder widths is the shared table (width = the
    larger one) used through a slice on the narrower side.

    Args:
        subnet: the architecture.
        cfg: vocabulary sizes, special symbols, dropout, norm placement.
        qkv_dim: q/k/v projection width of every attention (fairseq: the embed dim; HAT: fixed, e.g. 512).

    Raises:
        ConfigError: heads do not divide ``qkv_dim``, or arbitrary attention needs more encoder layers than exist.
    """

    def __init__(self, subnet: SubnetConfig, cfg: ModelConfig, qkv_dim: int):
        super().__init__()
        check_subnet_fits(subnet, qkv_dim, cfg=cfg)
        self.subnet = subnet
        self._build(cfg, qkv_dim, subnet.encoder_embed_dim, subnet.decoder_embed_dim,
                    list(subnet.encoder_ffn_embed_dim), list(subnet.decoder_ffn_embed_dim))
        self._apply_subnet(subnet)

    def count_params(self) -> int:
        """Parameters without embeddings and output projection (as HAT reports them)."""
        return count_subnet_params(self.subnet, self.qkv_dim, self.cfg.normalize_before)
