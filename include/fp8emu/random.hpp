// fp8emu: the counter-based random bits of stochastic rounding.
//
// The random bits for element i of a call are a pure function of (seed, stream, i), so
// results never depend on thread count, SIMD width or chunking (as Random123's
// counter-based generators, Salmon et al., SC 2011). Definition (version 1, fixed):
//   key = mix64(mix64(seed) ^ stream), k0 = its low 32 bits, k1 = its high 32 bits,
// where mix64 is the SplitMix64 finaliser (Steele, Lea and Flood, OOPSLA 2014); then,
// arithmetic mod 2^32, with lo and hi the two 32-bit halves of the index i,
//   x = lo ^ k0;  x ^= x >> 16;  x *= 0x7FEB352D;  x ^= x >> 15;
//   x ^= k1 + hi * 0x9E3779B9;   x *= 0x846CA68B;  x ^= x >> 16;  bits(i) = x,
// which is "lowbias32" from C. Wellons' hash-prospector with the key and the high word
// injected before and between its two multiplications. Every step is a bijection, so
// for one key and high word the 2^32 low words give 2^32 distinct values: the bits are
// exactly equidistributed over every 2^32 consecutive indices of one high word, and two
// keys give different permutations (not shifted copies of one). It is a statistical
// generator, not a cryptographic one; docs/arrays.md states how it is tested.
#pragma once

#include <cmath>
#include <cstdint>

namespace fp8emu {

/// Holds the 64-bit key derived from a (seed, stream) pair.
struct RandomKey {
  std::uint32_t k0 = 0, k1 = 0;
};

namespace detail {

/// Returns the SplitMix64 finaliser of `z`.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace detail

/// Returns the key of the random stream `stream` under `seed`.
constexpr RandomKey random_key(std::uint64_t seed, std::uint64_t stream) {
  const std::uint64_t h = detail::mix64(detail::mix64(seed) ^ stream);
  return {std::uint32_t(h), std::uint32_t(h >> 32)};
}

/// Returns the 32 random bits of element `index` of the stream with key `k`.
constexpr std::uint32_t random_bits(RandomKey k, std::uint64_t index) {
  std::uint32_t x = std::uint32_t(index) ^ k.k0;
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x ^= k.k1 + std::uint32_t(index >> 32) * 0x9E3779B9u;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

/// Returns a standard normal sample, element `index` of the stream with key `k`, by the
/// Box-Muller transform (Box and Muller, Ann. Math. Statist. 29(2), 1958) of two 32-bit
/// draws b1 = random_bits(k, 2 index), b2 = random_bits(k, 2 index + 1):
/// u1 = (b1 + 1/2) 2^-32 in (0, 1), u2 = b2 2^-32, z = sqrt(-2 ln u1) cos(2 pi u2), in
/// double. Its magnitude is at most sqrt(-2 ln 2^-33) < 6.76. The same (key, index)
/// gives the same value wherever it is computed with the same C library (log and cos
/// are not correctly rounded everywhere). The simulator's weights and the experiments'
/// random matrices are drawn with it.
inline double random_normal(RandomKey k, std::uint64_t index) {
  const double u1 = (double(random_bits(k, 2 * index)) + 0.5) * 0x1p-32;
  const double u2 = double(random_bits(k, 2 * index + 1)) * 0x1p-32;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace fp8emu
