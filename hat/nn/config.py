"""Model hyper-parameters that are not architecture genes (those live in :class:`hat.space.SubnetConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from hat.errors import ConfigError

ACTIVATIONS = ("relu", "gelu", "gelu_accurate", "gelu_fast", "tanh", "linear")


@dataclass
class ModelConfig:
    """Vocabulary, special symbols, regularization and fairseq-style switches of a (Super)Transformer.

    ``qkv_dim`` and the max dims come from the :class:`~hat.space.SearchSpace` (supernet) or from the
    :class:`~hat.space.SubnetConfig` plus ``qkv_dim`` (static model).
    """

    src_vocab_size: int
    tgt_vocab_size: int
    padding_idx: int = 1
    eos_idx: int = 2
    # Longest sequence the sinusoidal position table is built for (it grows on demand when exceeded).
    max_source_positions: int = 1024
    max_target_positions: int = 1024
    # One embedding table for source, target and output projection (needs src_vocab_size == tgt_vocab_size).
    share_all_embeddings: bool = True
    # Output projection tied to the decoder input embedding (implied by share_all_embeddings).
    share_decoder_input_output_embed: bool = True
    # Pre-norm (LayerNorm before each block, plus final encoder/decoder LayerNorms); False = fairseq post-norm.
    normalize_before: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.0
    # Dropout after the FFN activation.
    activation_dropout: float = 0.0
    activation_fn: str = "relu"
    # fairseq --no-scale-embedding: skip the sqrt(embed_dim) scale of token embeddings.
    no_scale_embedding: bool = False
    # HAT's own semantics, for models converted from HAT's checkpoints (hat.interop.hat_original; docs/design.md).
    # They differ from hat's in three places: (1) the sinusoidal position table is built at the SuperTransformer's
    # embed dim and narrower models use its leading columns (not a sinusoid of their own width); (2) arbitrary
    # encoder-decoder attention indexes the SuperTransformer's list of encoder layers, in which layers beyond the
    # active depth repeat the last active output; (3) decoder self-attention masks future positions only, not
    # padding keys (fairseq 0.8; changes outputs at pad positions only). A static model extracted from such a
    # SuperTransformer keeps these fields, so it reproduces HAT's numbers on its own.
    hat_compat: bool = False
    # With hat_compat: the SuperTransformer's encoder/decoder embed dims and encoder layer count.
    hat_super_encoder_embed_dim: int = 0
    hat_super_decoder_embed_dim: int = 0
    hat_super_encoder_layer_num: int = 0

    def __post_init__(self):
        if self.src_vocab_size <= 0 or self.tgt_vocab_size <= 0:
            raise ConfigError(f"vocab sizes must be positive, got {self.src_vocab_size}, {self.tgt_vocab_size}")
        if self.share_all_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError(f"share_all_embeddings needs equal vocab sizes, got src {self.src_vocab_size} and "
                              f"tgt {self.tgt_vocab_size}")
        if self.activation_fn not in ACTIVATIONS:
            raise ConfigError(f"activation_fn {self.activation_fn!r} is not one of {', '.join(ACTIVATIONS)}")
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {p}")
        for name in ("padding_idx", "eos_idx"):
            v = getattr(self, name)
            if not 0 <= v < min(self.src_vocab_size, self.tgt_vocab_size):
                raise ConfigError(f"{name}={v} is outside the vocabulary")
        if self.max_source_positions <= 0 or self.max_target_positions <= 0:
            raise ConfigError("max_source_positions and max_target_positions must be positive")
        if self.hat_compat:
            for name in ("hat_super_encoder_embed_dim", "hat_super_decoder_embed_dim", "hat_super_encoder_layer_num"):
                if getattr(self, name) <= 0:
                    raise ConfigError(f"hat_compat needs a positive {name}, got {getattr(self, name)}")

    @property
    def tie_output(self) -> bool:
        """Whether the output projection shares the decoder input embedding."""
        return self.share_all_embeddings or self.share_decoder_input_output_embed
