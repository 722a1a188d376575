#include <fp8emu/arith.hpp>
#include <fp8emu/convert.hpp>

#include <cstdint>
#include <cstdio>

int main() {
  // add(f, a, b, options = {}, random_bits = 0); sub, mul, div: the same;
  // fma(f, a, b, c, o, r); sqrt(f, a, o, r);
  // fma(out, fa, a, fb, b, fc, c, o, r): operands of their own formats, rounded to `out`.
  const fp8emu::formats::e4m3fn f;
  const std::uint32_t one = fp8emu::encode(f, 1.0), two = fp8emu::encode(f, 2.0);
  const std::uint32_t s = fp8emu::add(f, one, fp8emu::encode(f, 0.0625));  // a tie: 1 (even)
  const fp8emu::ConvertOptions away{.rounding = fp8emu::Rounding::nearest_away};
  const std::uint32_t sa = fp8emu::add(f, one, fp8emu::encode(f, 0.0625), away);  // 1.125
  const std::uint32_t r = fp8emu::sqrt(f, two);  // 1.414...: 1.375 is nearer than 1.5
  // 448 (e4m3fn) * 57344 (e5m2) + 1 (float32) = 25690113, a tie in float32: 25690112.
  const fp8emu::formats::float32 f32;
  const std::uint32_t m =
      fp8emu::fma(f32, f, fp8emu::encode(f, 448.0), fp8emu::formats::e5m2{},
                  fp8emu::encode(fp8emu::formats::e5m2{}, 57344.0), f32, fp8emu::encode(f32, 1.0));
  std::printf("1 + 0.0625 = %g, away %g; sqrt(2) = %g; 448 * 57344 + 1 = %.9g\n",
              fp8emu::decode(f, s), fp8emu::decode(f, sa), fp8emu::decode(f, r),
              fp8emu::decode(f32, m));
}
