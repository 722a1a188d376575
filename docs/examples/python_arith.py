import numpy as np

import fp8emu

# Codes of e4m3fn: 1 = 0x38, 1.5 = 0x3C, 2 = 0x40, 3 = 0x44, 448 = 0x7E (the largest).
a = np.array([[0x38, 0x3C, 0x44], [0x40, 0x7E, 0x00]], np.uint8)  # 1 1.5 3 / 2 448 0
b = np.array([0x38, 0x40, 0x38], np.uint8)  # 1 2 1, broadcast over the rows of a


def hexes(codes):
    return " ".join(f"{c:#04x}" for c in codes.ravel())


s = fp8emu.add(a, b, "e4m3fn")
print("add ", s.shape, s.dtype, hexes(s))
print("sqrt", hexes(fp8emu.sqrt(a, "e4m3fn")))
print("fma ", hexes(fp8emu.fma(a, b, np.uint8(0x38), "e4m3fn")))  # a * b + 1, rounded once
print("mul, saturation finite", hexes(fp8emu.mul(a, b, "e4m3fn")))
print("mul, saturation none  ", hexes(fp8emu.mul(a, b, "e4m3fn", saturation="none")))

# 1.125 * 1.5 = 1.6875 lies halfway between 1.625 (0x3D) and 1.75 (0x3E): stochastic
# rounding picks each about half the time, from the random bits of (seed, stream, index).
x = np.full(16, 0x39, np.uint8)
r = fp8emu.mul(x, np.uint8(0x3C), "e4m3fn", rounding="sr-a", sr_bits=4, seed=1)
print("sr-a", hexes(r))
same = fp8emu.mul(x, np.uint8(0x3C), "e4m3fn", rounding="sr-a", sr_bits=4, seed=1)
tail = fp8emu.mul(x[8:], np.uint8(0x3C), "e4m3fn", rounding="sr-a", sr_bits=4, seed=1,
                  first_index=8)
print("same seed, same bits:", np.array_equal(r, same), "; second half alone:",
      np.array_equal(r[8:], tail))

try:
    fp8emu.add(a, b.astype(np.int64), "e4m3fn")
except TypeError as e:
    print("TypeError:", e)
try:
    fp8emu.add(a, np.array([0x38, 0x40, 0x40, 0x38], np.uint8), "e4m3fn")
except ValueError as e:
    print("ValueError:", e)
