"""Synthesis: simple signals and inverses of transforms.

Simple signals (``simple``: sines, noise, ticks, silence) and inverses of
transforms (``inverse``). Public names are exported from ``zounds_xr``.
"""
