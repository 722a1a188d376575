"""fp8emu: bit-exact emulation of FP8 and other low-precision floating-point formats.

Every function works on NumPy arrays and gives the bits of the C++ library and of the
``fp8emu`` command line. The reference is docs/python.md; ``help(fp8emu.quantize)`` and
the other docstrings give each function's keywords. ``fp8emu.torch`` (PyTorch, optional)
trains a model's Linear layers under the simulator's precision recipes.
"""

from ._fp8emu import *  # noqa: F401,F403
from ._fp8emu import __version__  # noqa: F401
