"""The thread count of PyTorch's CPU work, for the benchmarks that time PyTorch beside
fp8emu on the same number of threads (torch_gpt_step.py, torch_linear.py).

A PyTorch built on OpenBLAS (Debian's python3-torch: libblas.so.3 from openblas-pthread)
runs its matrix products on OpenBLAS's own threads, which torch.set_num_threads does not
change: without openblas_set_num_threads, "one thread" of PyTorch multiplies matrices on
every core."""

import ctypes

import torch


def openblas_threads_setter():
    """Returns openblas_set_num_threads of the OpenBLAS loaded into this process, or None."""
    torch.ones(2, 2) @ torch.ones(2, 2)  # PyTorch's BLAS loaded
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "libopenblas" in line.rsplit("/", 1)[-1]})
    except OSError:
        return None
    return ctypes.CDLL(paths[0]).openblas_set_num_threads if paths else None


def set_threads(threads, blas=None):
    """Sets PyTorch's threads and, with `blas` (openblas_threads_setter()), OpenBLAS's."""
    torch.set_num_threads(threads)
    if blas is not None:
        blas(threads)


def describe(blas):
    """Says how the thread count reaches PyTorch's matrix products."""
    return "openblas_set_num_threads" if blas is not None else "torch.set_num_threads only, not OpenBLAS"
