"""Console entry points (``hat-*``). Each module exposes ``main(argv=None) -> int``."""
