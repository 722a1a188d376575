// The gradient all-reduce of data-parallel training (see include/fp8sim/allreduce.hpp).
#include "fp8sim/allreduce.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "fp8emu/array.hpp"

namespace fp8sim {
namespace {

fp8emu::ArrayOptions comm_options() {
  fp8emu::ArrayOptions o;
  o.convert = {fp8emu::Rounding::nearest_even, fp8emu::Saturation::finite};
  o.exec.threads = 1;
  return o;
}

template <class Code>
std::span<Code> codes_of(std::span<std::byte> b) {
  return {reinterpret_cast<Code*>(b.data()), b.size() / sizeof(Code)};
}
template <class Code>
std::span<const Code> codes_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const Code*>(b.data()), b.size() / sizeof(Code)};
}

// Quantizes and counts: a code with every bit but the sign clear is a zero in bf16,
// e4m3fn and e5m2.
template <class Code>
void encode(const fp8emu::Format& f, std::span<const float> x, std::span<Code> c, CommStats& st) {
  fp8emu::quantize(f, x, c, comm_options());
  const double fmax = fp8emu::max_finite(f);
  // Past the midpoint between the max finite value and the next binade step above it,
  // rounding to nearest would leave the finite range (as QuantStats::saturated).
  const double clip = fmax + std::ldexp(1.0, std::ilogb(fmax) - f.mantissa_bits - 1);
  const Code magnitude = Code(~(Code(1) << (8 * sizeof(Code) - 1)));
  std::int64_t under = 0, over = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    under += (x[i] != 0) & ((c[i] & magnitude) == 0);
    over += std::fabs(double(x[i])) > clip;
  }
  st.quantized += std::int64_t(x.size());
  st.underflow += under;
  st.overflow += over;
}

// The element range of chunk c.
struct Range {
  std::int64_t begin, size;
};
Range chunk(std::int64_t n, int ranks, int c) {
  const std::int64_t b = chunk_begin(n, ranks, c);
  return {b, chunk_begin(n, ranks, c + 1) - b};
}

int mod(int a, int r) { return ((a % r) + r) % r; }

}  // namespace

void CommStats::add_counts(const CommStats& o) {
  quantized += o.quantized;
  underflow += o.underflow;
  overflow += o.overflow;
}

void TreeSum::push(std::span<const float> v, std::int64_t leaves) {
  if (!stack_.empty() && stack_.front().v.size() != v.size())
    throw std::invalid_argument("TreeSum: vectors of different lengths");
  stack_.push_back({std::vector<float>(v.begin(), v.end()), leaves});
  // Two complete subtrees of one size make the next level's node (left + right).
  while (stack_.size() >= 2 && stack_[stack_.size() - 2].leaves == stack_.back().leaves) {
    Node right = std::move(stack_.back());
    stack_.pop_back();
    Node& left = stack_.back();
    for (std::size_t i = 0; i < left.v.size(); ++i) left.v[i] += right.v[i];
    left.leaves *= 2;
  }
}

std::vector<float> TreeSum::take() {
  // The incomplete right edge of the tree: each node is the sum of the complete subtree to
  // its left and everything to its right (a last odd node passes up unchanged).
  while (stack_.size() >= 2) {
    Node right = std::move(stack_.back());
    stack_.pop_back();
    Node& left = stack_.back();
    for (std::size_t i = 0; i < left.v.size(); ++i) left.v[i] += right.v[i];
    left.leaves += right.leaves;
  }
  std::vector<float> out = stack_.empty() ? std::vector<float>{} : std::move(stack_.back().v);
  stack_.clear();
  return out;
}

std::int64_t chunk_begin(std::int64_t n, int ranks, int c) { return n / ranks * c + n % ranks * c / ranks; }

int comm_code_bytes(const fp8emu::Format& f) { return fp8emu::total_bits(f) <= 8 ? 1 : 2; }

void ring_encode(const fp8emu::Format& f, std::span<const float> x, std::span<std::byte> codes, CommStats& st) {
  if (comm_code_bytes(f) == 1)
    encode(f, x, codes_of<std::uint8_t>(codes), st);
  else
    encode(f, x, codes_of<std::uint16_t>(codes), st);
}

void ring_decode(const fp8emu::Format& f, std::span<const std::byte> codes, std::span<float> out) {
  if (comm_code_bytes(f) == 1)
    fp8emu::dequantize(f, codes_of<std::uint8_t>(codes), out, comm_options());
  else
    fp8emu::dequantize(f, codes_of<std::uint16_t>(codes), out, comm_options());
}

void ring_accumulate(const fp8emu::Format& f, std::span<const std::byte> received, std::span<const float> own,
                     std::span<float> acc) {
  ring_decode(f, received, acc);
  for (std::size_t i = 0; i < acc.size(); ++i) acc[i] += own[i];
}

std::vector<float> ring_allreduce_simulated(const fp8emu::Format& f, const std::vector<std::vector<float>>& y,
                                            CommStats& st) {
  const int R = int(y.size());
  if (R == 1) return y[0];
  const std::int64_t n = std::int64_t(y[0].size());
  const std::size_t cb = std::size_t(comm_code_bytes(f));
  // acc[r]: the partial sum of the chunk rank r received last; sent[r]: its codes out.
  std::vector<std::vector<float>> acc(y.size());
  std::vector<std::vector<std::byte>> sent(y.size());
  // Reduce-scatter: at step k rank r sends chunk r - k to rank r + 1.
  for (int k = 0; k + 1 < R; ++k) {
    for (int r = 0; r < R; ++r) {
      const Range c = chunk(n, R, mod(r - k, R));
      sent[std::size_t(r)].resize(std::size_t(c.size) * cb);
      const std::span<const float> x =
          k == 0 ? std::span<const float>(y[std::size_t(r)].data() + c.begin, std::size_t(c.size))
                 : std::span<const float>(acc[std::size_t(r)]);
      ring_encode(f, x, sent[std::size_t(r)], st);
    }
    for (int r = 0; r < R; ++r) {
      const int from = mod(r - 1, R);
      const Range c = chunk(n, R, mod(from - k, R));
      acc[std::size_t(r)].resize(std::size_t(c.size));
      ring_accumulate(f, sent[std::size_t(from)], {y[std::size_t(r)].data() + c.begin, std::size_t(c.size)},
                      acc[std::size_t(r)]);
    }
  }
  // All-gather: rank r owns chunk r + 1 and sends its codes around the ring; every rank,
  // the owner too, keeps their decoded values.
  std::vector<float> out(y[0].size());
  for (int r = 0; r < R; ++r) {
    const Range c = chunk(n, R, mod(r + 1, R));
    std::vector<std::byte> codes(std::size_t(c.size) * cb);
    ring_encode(f, acc[std::size_t(r)], codes, st);
    ring_decode(f, codes, {out.data() + c.begin, std::size_t(c.size)});
  }
  return out;
}

void ring_allreduce(Communicator& comm, const fp8emu::Format& f, std::vector<float>& y, CommStats& st) {
  const int R = comm.size(), r = comm.rank();
  if (R == 1) return;
  const std::int64_t n = std::int64_t(y.size());
  const std::size_t cb = std::size_t(comm_code_bytes(f));
  const int to = mod(r + 1, R), from = mod(r - 1, R);
  std::vector<float> acc;
  std::vector<std::byte> send, recv;
  for (int k = 0; k + 1 < R; ++k) {
    const Range out = chunk(n, R, mod(r - k, R)), in = chunk(n, R, mod(r - k - 1, R));
    send.resize(std::size_t(out.size) * cb);
    const std::span<const float> x =
        k == 0 ? std::span<const float>(y.data() + out.begin, std::size_t(out.size)) : std::span<const float>(acc);
    ring_encode(f, x, send, st);
    recv.resize(std::size_t(in.size) * cb);
    comm.sendrecv(send, to, recv, from);
    acc.resize(std::size_t(in.size));
    ring_accumulate(f, recv, {y.data() + in.begin, std::size_t(in.size)}, acc);
  }
  // All-gather: the codes of every chunk, this rank's own first.
  std::vector<std::byte> codes(std::size_t(n) * cb);
  const Range own = chunk(n, R, mod(r + 1, R));
  ring_encode(f, acc, {codes.data() + own.begin * std::int64_t(cb), std::size_t(own.size) * cb}, st);
  for (int k = 0; k + 1 < R; ++k) {
    const Range out = chunk(n, R, mod(r + 1 - k, R)), in = chunk(n, R, mod(r - k, R));
    comm.sendrecv({codes.data() + out.begin * std::int64_t(cb), std::size_t(out.size) * cb}, to,
                  {codes.data() + in.begin * std::int64_t(cb), std::size_t(in.size) * cb}, from);
  }
  ring_decode(f, codes, y);
}

double next_mu(double mu, const CommStats& step) {
  if (step.quantized == 0) return mu;
  const bool over = double(step.overflow) > kMuOverflowThreshold * double(step.quantized);
  const double next = over ? mu * 0.5 : mu * std::exp2(1.0 / 1000.0);
  return std::clamp(next, kMuMin, kMuMax);
}

}  // namespace fp8sim
