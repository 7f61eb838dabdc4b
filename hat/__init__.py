"""hat: hardware-aware neural architecture search for Transformers."""

__version__ = "0.1.0"
