// The gradient all-reduce of data-parallel training (LmConfig::micro_batches, ranks; the
// recipe key `comm`), modelled bit for bit. docs/simulator.md, "Data-parallel training",
// gives the exact semantics and the sources.
//  - float32: the micro-batch gradients are summed in one fixed order, a pairwise tree
//    over the micro-batch index (TreeSum), whatever the number of ranks.
//  - bf16, e4m3fn, e5m2: the ring all-reduce of NCCL (a reduce-scatter over R chunks,
//    then an all-gather). Every partial sum a rank sends is quantized to the format
//    (round to nearest even, saturating), the receiver decodes it and adds its own
//    contribution in float32 (ring_accumulate), and the owner of a reduced chunk sends it
//    quantized in the all-gather, keeping the decoded values itself, so that every rank
//    ends with the same values. The arithmetic of a hop is written once (ring_encode,
//    ring_accumulate, ring_decode) and used by both drivers: ring_allreduce_simulated
//    (all R ranks' vectors in this process) and ring_allreduce (this rank's vector, the
//    others through a Communicator of size R).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fp8emu/format.hpp"
#include "fp8sim/comm.hpp"

namespace fp8sim {

/// What the quantizations of one all-reduce did, summed over every hop of every rank.
struct CommStats {
  std::int64_t quantized = 0;  ///< Values quantized (every send of a partial sum).
  std::int64_t underflow = 0;  ///< Nonzero values whose code is a zero.
  std::int64_t overflow = 0;   ///< Values past the format's max finite value by more than
                               ///< half a step (the saturating cast clipped them).
  double mu = 1;               ///< The automatic scaling factor of the step (1 without).
  void add_counts(const CommStats& o);
};

/// Sums float vectors of one length in the fixed pairwise order of their index: leaves
/// 2i and 2i + 1 are added (left + right), then pairs of pairs, a last odd node passing up
/// a level unchanged. push() takes the nodes left to right, each a leaf or the sum of
/// `leaves` consecutive leaves (a power of two, the size of a complete subtree the caller
/// summed with another TreeSum), so that partial sums of aligned blocks combine into the
/// same bits as the sum of all leaves.
class TreeSum {
 public:
  void push(std::span<const float> v, std::int64_t leaves = 1);
  /// The sum of everything pushed (empty when nothing was); the TreeSum is empty after.
  std::vector<float> take();

 private:
  struct Node {
    std::vector<float> v;
    std::int64_t leaves;
  };
  std::vector<Node> stack_;
};

/// The first element of chunk c of n elements in R chunks: c n / R (chunk c is
/// [chunk_begin(c), chunk_begin(c + 1))).
std::int64_t chunk_begin(std::int64_t n, int ranks, int c);

/// Bytes per code of a communication format (1 for the FP8 formats, 2 for bf16).
int comm_code_bytes(const fp8emu::Format& f);

/// Quantizes `x` to codes of `f` (round to nearest even, saturating to the max finite
/// value; NaN stays NaN) by fp8emu::quantize, counting into `st`.
void ring_encode(const fp8emu::Format& f, std::span<const float> x, std::span<std::byte> codes, CommStats& st);
/// Decodes codes of `f` into floats (exact) by fp8emu::dequantize.
void ring_decode(const fp8emu::Format& f, std::span<const std::byte> codes, std::span<float> out);
/// One hop of the reduce-scatter at the receiver: acc = decode(received) + own, in float32,
/// element by element.
void ring_accumulate(const fp8emu::Format& f, std::span<const std::byte> received, std::span<const float> own,
                     std::span<float> acc);

/// The ring all-reduce of the R vectors `y` (one per rank, all of one length), simulated
/// in this process; returns the values every rank ends with. R = 1 returns y[0] unchanged.
std::vector<float> ring_allreduce_simulated(const fp8emu::Format& f, const std::vector<std::vector<float>>& y,
                                            CommStats& st);
/// The same all-reduce on rank comm.rank() of comm.size(): replaces `y` by the values
/// every rank ends with. `st` gets this rank's counts only (the caller sums them over the
/// ranks).
void ring_allreduce(Communicator& comm, const fp8emu::Format& f, std::vector<float>& y, CommStats& st);

/// FP8-LM's threshold: more than this fraction of the quantized values overflowing
/// halves mu.
inline constexpr double kMuOverflowThreshold = 1e-5;
/// mu's bounds (it stays a normal float32 value however long a run).
inline constexpr double kMuMin = 0x1p-100, kMuMax = 0x1p100;
/// The automatic scaling factor after a step with these counts (FP8-LM, arXiv 2310.18313
/// section 3.1): halved when overflow / quantized exceeds kMuOverflowThreshold, else
/// multiplied by 2^(1/1000) (doubled over 1000 such steps); clamped to [kMuMin, kMuMax].
/// A step that quantized nothing leaves mu as it is.
double next_mu(double mu, const CommStats& step);

}  // namespace fp8sim
