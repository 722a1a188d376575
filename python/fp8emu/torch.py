"""fp8emu.torch: PyTorch layers whose GEMMs follow fp8emu's precision recipes (being written)."""
