"""Interoperability with other toolkits (fairseq checkpoints)."""
