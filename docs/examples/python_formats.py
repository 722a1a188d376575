"""Formats from Python: properties, the catalog, one conversion explained, code fields."""
import numpy as np

import fp8emu

# [doc:format]
f = fp8emu.Format("e4m3fn")
print(f.name, f.bits, f.exponent_bits, f.mantissa_bits, f.bias, f.policy)
print("max", f.max, "min_normal", f.min_normal, "min_positive", f.min_positive, "epsilon", f.epsilon)
print("has_inf", f.has_inf, "nan_code", hex(f.nan_code), "code_dtype", f.code_dtype)
print(fp8emu.Format("e4m3:bias=7:policy=fn") == f, fp8emu.Format("binary8p3se").name)
values = f.values()  # float64, indexed by code
print(len(values), values[0x01], values[0x7E], np.isnan(values[0x7F]))
# [/doc:format]

# [doc:catalog]
for g in fp8emu.formats()[:3]:
    print(f"{g.name:10} {g.bits:2} bits  max {g.max:<8g} {g.source}")
# [/doc:catalog]

# [doc:explain]
e = fp8emu.explain("e4m3fn", 3.3)
print(e, end="")
print(hex(e.code), e.value, e.below.value, e.above.value, e.status)
sr = fp8emu.explain("e4m3fn", 3.3, rounding="sr-a", sr_bits=4, random=13)
print(hex(sr.code), sr.value, sr.status)
c = fp8emu.fields("e5m2", 0xFC)
print(c.value_class, c.negative, c.exponent_field, c.mantissa_field, c.value)
# [/doc:explain]

# [doc:options]
print(list(fp8emu.roundings()))
print(fp8emu.saturations()["propagate"])
print(fp8emu.random_bits(seed=1, stream=0, index=np.arange(3)))
# [/doc:options]
