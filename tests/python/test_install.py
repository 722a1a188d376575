"""The package as `cmake --install` lays it out: installed into a scratch prefix, it
imports and runs from there alone (no build tree on the path)."""

import os
import pathlib
import subprocess
import sys

import pytest


def test_installed_package_imports_and_runs(tmp_path):
    build = os.environ.get("FP8EMU_BUILD_DIR")
    if not build:
        pytest.fail("FP8EMU_BUILD_DIR does not name the build tree (ctest sets it)")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build, "--component", "python", "--prefix", str(prefix)],
                   check=True, capture_output=True, text=True)
    inits = sorted(prefix.rglob("fp8emu/__init__.py"))
    if not inits:
        pytest.skip("FP8EMU_PYTHON_INSTALL_DIR is an absolute path outside the prefix")
    assert len(inits) == 1, inits
    site = inits[0].parent.parent
    assert sorted(p.name for p in (site / "fp8emu").iterdir() if p.suffix == ".py") == ["__init__.py", "torch.py"]
    assert len(list((site / "fp8emu").glob("_fp8emu*.so"))) == 1
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    code = ("import fp8emu, pathlib, numpy as np; "
            "print(pathlib.Path(fp8emu.__file__).parent); print(fp8emu.__version__); "
            "print(fp8emu.quantize(np.array([1.0, 448.0, 1e9], np.float32), 'e4m3fn').tolist())")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, check=True)
    where, version, codes = p.stdout.splitlines()
    assert pathlib.Path(where) == site / "fp8emu"
    assert version.count(".") == 2
    assert codes == "[56, 126, 126]"  # 1 = 0x38, 448 = 0x7E, and 1e9 saturates to 448
