"""Shared fixtures of the Python package's tests (ctest runs each file with PYTHONPATH
set to the build tree's package and FP8EMU_CLI to the fp8emu command line built with it)."""

import os
import subprocess

import numpy as np
import pytest


@pytest.fixture(scope="module")
def cli_path():
    """The fp8emu command line of this build."""
    path = os.environ.get("FP8EMU_CLI")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("FP8EMU_CLI does not name the fp8emu command line (ctest sets it)")
    return path


@pytest.fixture
def cli(cli_path, tmp_path):
    """Runs `fp8emu ARGS...` in tmp_path; returns the CompletedProcess (text). With
    check=True (the default) a non-zero exit fails the test with the program's stderr."""

    def run(*args, check=True):
        p = subprocess.run([cli_path, *map(str, args)], cwd=tmp_path, capture_output=True, text=True)
        if check and p.returncode != 0:
            pytest.fail(f"fp8emu {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
        return p

    return run


@pytest.fixture
def npy(tmp_path):
    """Saves an array as tmp_path/NAME.npy and returns the path, or loads one back."""

    class Npy:
        def save(self, name, a):
            path = tmp_path / f"{name}.npy"
            np.save(path, a)
            return path

        def load(self, name):
            return np.load(tmp_path / f"{name}.npy")

    return Npy()
