// libFuzzer target for the checkpoint reader: any byte string either decodes into a state
// that matches the layout and encodes back to the same bytes, or throws DataError; nothing
// else may happen. Each input is tried as it is (the frame: magic, version, length,
// checksum) and again with its length and CRC-32 made right (the fields behind them).
// Built with -DFP8SIM_FUZZ_SEEDS instead, it writes the seed corpus: checkpoints of the
// layout below at step 0 (empty moments and histories), after two epochs, and of a
// language-model run after four iterations.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fp8sim/checkpoint.hpp"

namespace {

// One GEMM (6 operand slots, delayed scaling on four of them), two parameters, AdamW; as a
// Run (version 2) or as a language-model run of 5 iterations evaluated every 2 (version 4).
fp8sim::CheckpointLayout make_layout(bool lm) {
  fp8sim::CheckpointLayout x;
  x.fingerprint = "model=fuzz\nseed=1\n";
  x.param_sizes = {3, 2};
  x.second_moment = true;
  x.history = {4, 4, 0, 0, 4, 4};
  x.steps_per_epoch = 2;
  x.lm = lm;
  x.iterations = 5;
  x.eval_every = 2;
  return x;
}

const fp8sim::CheckpointLayout& layout(bool lm = false) {
  static const fp8sim::CheckpointLayout run = make_layout(false), lm_run = make_layout(true);
  return lm ? lm_run : run;
}

void check(const std::vector<std::uint8_t>& bytes) {
  for (bool lm : {false, true}) {
    const fp8sim::CheckpointLayout& l = layout(lm);
    try {
      const fp8sim::CheckpointState s = fp8sim::decode_checkpoint(bytes, l, "fuzz");
      if (s.params.size() != l.param_sizes.size() || s.slots.size() != l.history.size() ||
          s.pending.size() != l.history.size() || s.epoch_rows.size() != std::size_t(s.epochs_done) ||
          s.lm != lm || (lm && (s.step > l.iterations || s.grad_norm.size() != std::size_t(s.step))))
        std::abort();
      for (const auto& o : s.slots)
        if (o.recorded < 0 || o.recorded > s.step) std::abort();
      if (fp8sim::encode_checkpoint(l.fingerprint, s) != bytes) std::abort();
    } catch (const fp8sim::DataError&) {
    }
  }
}

}  // namespace

#ifndef FP8SIM_FUZZ_SEEDS
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> b(data, data + size);
  check(b);
  if (b.size() >= 24) {
    const std::uint64_t length = b.size();
    std::memcpy(b.data() + 12, &length, 8);
    const std::uint32_t crc = std::uint32_t(::crc32(0, b.data(), uInt(b.size() - 4)));
    std::memcpy(b.data() + b.size() - 4, &crc, 4);
    check(b);
  }
  return 0;
}
#else
int main(int argc, char** argv) {
  if (argc != 2) return 2;
  fp8sim::CheckpointState fresh;
  fresh.params = {{{0.5f, -0.25f, 1.0f}, {}, {}}, {{0.0f, 2.0f}, {}, {}}};
  fresh.slots.resize(6);
  fresh.pending.resize(6);
  fp8sim::CheckpointState trained = fresh;
  trained.step = 4;
  trained.epochs_done = 2;
  for (auto& p : trained.params) p.m1 = p.m2 = std::vector<float>(p.value.size(), 0.125f);
  for (int i : {0, 1, 4, 5}) trained.slots[std::size_t(i)] = {{1.5f, 2.0f, 0.75f, 3.0f}, 4, 64.0f};
  trained.step_loss = {2.3, 2.1, 1.9, 1.7};
  fp8sim::QuantStats q;
  q.amax = 3.0, q.count = 6, q.nonzero = 5, q.flushed = 1, q.saturated = 0, q.signal = 10,
  q.noise = 0.01, q.uses = 2;
  trained.stats_rows = {{2, 0, 0, 0, q}, {4, 0, 2, 1, q}};
  trained.epoch_rows = {{1, 2.2, 2.0, 0.3, 0.5}, {2, 1.8, 1.7, 0.4, 0.5}};
  trained.total = q;
  // A language-model run after 4 of its 5 iterations (evaluated at 2 and 4).
  fp8sim::CheckpointState lm = trained;
  lm.epochs_done = 0;
  lm.epoch_rows.clear();
  lm.lm = true;
  lm.grad_norm = {3.0, 1.5, 0.75, 0.5};
  lm.clipped = 2;
  lm.eval_rows = {{2, 2.2, 2.1, 0.5}, {4, 1.8, 1.9, 1.0}};
  lm.comm_stats = {{0, 0, 0, 1.0}, {100, 3, 1, 1.0}, {100, 0, 0, 0.5}, {100, 2, 0, 0.5}};
  lm.comm_mu = 0.5;
  for (const auto& [name, s] :
       {std::pair{"fresh", &fresh}, std::pair{"trained", &trained}, std::pair{"lm", &lm}}) {
    const std::vector<std::uint8_t> b = fp8sim::encode_checkpoint(layout().fingerprint, *s);
    check(b);  // the seeds are valid: they decode and encode back
    fp8sim::decode_checkpoint(b, layout(s->lm), name);
    const std::string path = std::string(argv[1]) + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(b.data(), 1, b.size(), f) != b.size() || std::fclose(f) != 0) return 1;
  }
  return 0;
}
#endif
