// The runs the data-parallel tests compare (tests/sim/test_dataparallel.cpp, threads as
// ranks; tests/mpi/test_dataparallel.cpp, MPI ranks): a tiny GPT on a periodic token
// stream, and the first public result in which two runs differ.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fp8sim/lm.hpp"

namespace dp_fixture {

using namespace fp8sim;

inline const TokenSplit& tokens() {
  static const TokenSplit d = [] {
    const std::int32_t period[12] = {3, 7, 1, 9, 3, 12, 7, 5, 9, 0, 14, 2};
    TokenSplit s;
    s.vocab = 16;
    for (int i = 0; i < 900; ++i) s.train.push_back(period[(i * 7 + i / 12) % 12]);
    for (int i = 0; i < 200; ++i) s.val.push_back(period[(i + 5) % 12]);
    return s;
  }();
  return d;
}

inline LmConfig small(const std::string& recipe, std::int64_t micro, std::int64_t ranks) {
  LmConfig c;
  c.recipe = named_recipe(recipe);
  c.model.context = 8;
  c.model.layers = 1;
  c.model.heads = 2;
  c.model.width = 16;
  c.model.dropout = 0.1f;  // random streams of the micro-batch's global index
  c.seed = 5;
  c.iterations = 6;
  c.batch = 8;
  c.lr = 1e-2f;
  c.min_lr = 1e-3f;
  c.warmup = 2;
  c.eval_every = 3;
  c.eval_batches = 2;
  c.log_every = 2;
  c.micro_batches = micro;
  c.ranks = ranks;
  c.exec.threads = 1;
  return c;
}

inline void train_all(LmRun& run) {
  while (!run.done()) run.train_until_eval();
}

template <class T>
inline bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Returns the first public result in which the two runs differ, or "".
inline std::string difference(LmRun& a, LmRun& b) {
  const std::vector<Param*> pa = a.model().params(), pb = b.model().params();
  for (std::size_t i = 0; i < pa.size(); ++i)
    if (pa[i]->value.data != pb[i]->value.data || pa[i]->m1 != pb[i]->m1 || pa[i]->m2 != pb[i]->m2)
      return "parameter " + pa[i]->name;
  if (a.step_loss.size() != b.step_loss.size() ||
      std::memcmp(a.step_loss.data(), b.step_loss.data(), a.step_loss.size() * 8) != 0)
    return "step losses";
  if (a.grad_norm != b.grad_norm) return "gradient norms";
  if (a.clipped != b.clipped) return "clipped";
  if (a.stats_rows.size() != b.stats_rows.size()) return "number of statistics rows";
  for (std::size_t i = 0; i < a.stats_rows.size(); ++i) {
    const StatsRow &x = a.stats_rows[i], &y = b.stats_rows[i];
    if (x.step != y.step || x.layer != y.layer || x.role != y.role || x.operand != y.operand ||
        !same_bytes(x.stats, y.stats))
      return "statistics row " + std::to_string(i);
  }
  if (!same_bytes(a.total, b.total)) return "total statistics";
  if (a.eval_rows.size() != b.eval_rows.size()) return "number of evaluations";
  for (std::size_t i = 0; i < a.eval_rows.size(); ++i)
    if (a.eval_rows[i].iteration != b.eval_rows[i].iteration || a.eval_rows[i].train_loss != b.eval_rows[i].train_loss ||
        a.eval_rows[i].val_loss != b.eval_rows[i].val_loss)
      return "evaluation " + std::to_string(i);
  if (a.comm_stats.size() != b.comm_stats.size()) return "number of communication rows";
  for (std::size_t i = 0; i < a.comm_stats.size(); ++i)
    if (!same_bytes(a.comm_stats[i], b.comm_stats[i])) return "communication row " + std::to_string(i);
  if (a.comm_mu != b.comm_mu) return "mu";
  for (std::size_t i = 0; i < a.model().gemm_cores().size(); ++i)
    for (int r = 0; r < kRoles; ++r)
      for (int o = 0; o < 2; ++o) {
        const OperandState &x = a.model().gemm_cores()[i]->states[r][o], &y = b.model().gemm_cores()[i]->states[r][o];
        if (x.history != y.history || x.recorded != y.recorded || x.scale != y.scale) return "operand state";
      }
  return "";
}

}  // namespace dp_fixture
