"""Elastic (weight-sharing) SuperTransformer and static Transformer, fairseq-compatible."""

from hat.nn.build import network
from hat.nn.config import ModelConfig
from hat.nn.model import EncoderOut, count_subnet_params
from hat.nn.supertransformer import SuperTransformer
from hat.nn.transformer import Transformer

__all__ = ["ModelConfig", "EncoderOut", "SuperTransformer", "Transformer", "count_subnet_params", "network"]
