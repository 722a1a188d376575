// Checkpoint encoding and validation (see include/fp8sim/checkpoint.hpp).
#include "fp8sim/checkpoint.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>

namespace fp8sim {
namespace {

constexpr char kMagic[8] = {'F', 'P', '8', 'S', 'I', 'M', 'C', 'K'};
constexpr std::size_t kHeader = 8 + 4 + 8;  // magic, version, length
constexpr std::size_t kTrailer = 4;         // CRC-32

// The records are written field by field (no padding bytes in the file); a new field
// changes these sizes and must be added to put/get below.
static_assert(sizeof(QuantStats) == 64, "QuantStats changed: update the checkpoint codec");
static_assert(sizeof(StatsRow) == 88, "StatsRow changed: update the checkpoint codec");
static_assert(sizeof(EpochRow) == 40, "EpochRow changed: update the checkpoint codec");
static_assert(sizeof(EvalRow) == 32, "EvalRow changed: update the checkpoint codec");

std::uint32_t crc32_of(const std::uint8_t* p, std::size_t n) {
  return std::uint32_t(::crc32_z(::crc32_z(0, nullptr, 0), p, n));
}

struct Writer {
  std::vector<std::uint8_t> buf;
  template <class T>
  void put(const T& v) {
    static_assert(std::is_arithmetic_v<T>);
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    buf.insert(buf.end(), p, p + sizeof(T));
  }
  template <class T>
  void put_vec(const std::vector<T>& v) {
    static_assert(std::is_arithmetic_v<T>);
    put(std::uint64_t(v.size()));
    const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
    if (!v.empty()) buf.insert(buf.end(), p, p + v.size() * sizeof(T));
  }
  void put_str(const std::string& s) {
    put(std::uint64_t(s.size()));
    buf.insert(buf.end(), s.begin(), s.end());
  }
  void put_stats(const QuantStats& q) {
    put(q.amax), put(q.count), put(q.nonzero), put(q.flushed), put(q.saturated);
    put(q.signal), put(q.noise), put(q.uses);
  }
};

class Reader {
 public:
  Reader(std::span<const std::uint8_t> b, const std::string& name, std::size_t end)
      : b_(b), name_(name), end_(end) {}
  [[noreturn]] void fail(const std::string& why) const { throw DataError(name_ + ": " + why); }
  std::size_t pos() const { return pos_; }
  void seek(std::size_t p) { pos_ = p; }

  template <class T>
  T get(const char* what) {
    if (end_ - pos_ < sizeof(T))
      fail(std::string("corrupt checkpoint: the file ends inside ") + what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  // Reads a count of items of `item` bytes each, no more than the rest of the file holds.
  std::size_t count(const std::string& what, std::size_t item) {
    const auto n = get<std::uint64_t>(what.c_str());
    if (n > (end_ - pos_) / item)
      fail("corrupt checkpoint: " + what + " has " + std::to_string(n) +
           " elements, more than the file holds");
    return std::size_t(n);
  }
  template <class T>
  std::vector<T> get_vec(const std::string& what) {
    std::vector<T> v(count(what, sizeof(T)));
    if (!v.empty()) std::memcpy(v.data(), b_.data() + pos_, v.size() * sizeof(T));
    pos_ += v.size() * sizeof(T);
    return v;
  }
  std::string get_str(const char* what) {
    const std::size_t n = count(what, 1);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  QuantStats get_stats(const std::string& what) {
    QuantStats q;
    const char* w = what.c_str();
    q.amax = get<double>(w), q.count = get<std::int64_t>(w), q.nonzero = get<std::int64_t>(w);
    q.flushed = get<std::int64_t>(w), q.saturated = get<std::int64_t>(w);
    q.signal = get<double>(w), q.noise = get<double>(w), q.uses = get<std::int64_t>(w);
    // amax, signal and noise are NaN after a NaN element; never negative.
    if (q.amax < 0 || q.signal < 0 || q.noise < 0 || q.count < 0 || q.nonzero < 0 ||
        q.nonzero > q.count || q.flushed < 0 || q.flushed > q.nonzero || q.saturated < 0 ||
        q.saturated > q.count || q.uses < 0)
      fail("corrupt checkpoint: impossible statistics in " + what);
    return q;
  }

 private:
  std::span<const std::uint8_t> b_;
  const std::string& name_;
  std::size_t end_;
  std::size_t pos_ = 0;
};

std::string hex32(std::uint32_t v) {
  char s[11];
  std::snprintf(s, sizeof s, "0x%08X", v);
  return s;
}

}  // namespace

std::vector<std::uint8_t> encode_checkpoint(const std::string& fingerprint,
                                            const CheckpointState& s) {
  Writer w;
  w.buf.assign(kMagic, kMagic + 8);
  w.put(s.lm ? kLmCheckpointVersion : kCheckpointVersion);
  w.put(std::uint64_t(0));  // the length, set below
  w.put_str(fingerprint);
  w.put(s.step);
  w.put(std::int32_t(s.epochs_done));
  for (const ParamState& p : s.params) {
    w.put_vec(p.value);
    w.put_vec(p.m1);
    w.put_vec(p.m2);
  }
  for (const SlotState& o : s.slots) {
    w.put_vec(o.history);
    w.put(o.recorded);
    w.put(o.scale);
  }
  w.put_vec(s.step_loss);
  w.put(std::uint64_t(s.stats_rows.size()));
  for (const StatsRow& r : s.stats_rows) {
    w.put(r.step), w.put(std::int32_t(r.layer)), w.put(std::int32_t(r.role)),
        w.put(std::int32_t(r.operand));
    w.put_stats(r.stats);
  }
  w.put(std::uint64_t(s.epoch_rows.size()));
  for (const EpochRow& e : s.epoch_rows) {
    w.put(std::int32_t(e.epoch)), w.put(e.train_loss), w.put(e.test_loss), w.put(e.test_accuracy);
    w.put(e.seconds);
  }
  w.put_stats(s.total);
  w.put(std::uint64_t(s.pending.size()));
  for (const QuantStats& q : s.pending) w.put_stats(q);
  if (s.lm) {
    w.put_vec(s.grad_norm);
    w.put(s.clipped);
    w.put(std::uint64_t(s.eval_rows.size()));
    for (const EvalRow& e : s.eval_rows) w.put(e.iteration), w.put(e.train_loss), w.put(e.val_loss), w.put(e.seconds);
    w.put(std::uint64_t(s.comm_stats.size()));
    for (const CommStats& c : s.comm_stats) w.put(c.quantized), w.put(c.underflow), w.put(c.overflow), w.put(c.mu);
    w.put(s.comm_mu);
  }
  const std::uint64_t length = w.buf.size() + kTrailer;
  std::memcpy(w.buf.data() + 12, &length, 8);
  w.put(crc32_of(w.buf.data(), w.buf.size()));
  return std::move(w.buf);
}

CheckpointState decode_checkpoint(std::span<const std::uint8_t> bytes,
                                  const CheckpointLayout& layout, const std::string& name) {
  // 1. The frame: magic, version, length, checksum.
  Reader r(bytes, name, bytes.size());
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kMagic, 8) != 0)
    r.fail("not a checkpoint of fp8sim");
  if (bytes.size() < kHeader + kTrailer)
    r.fail("truncated checkpoint: " + std::to_string(bytes.size()) + " bytes");
  r.seek(8);
  const auto version = r.get<std::uint32_t>("the version");
  const std::uint32_t expected = layout.lm ? kLmCheckpointVersion : kCheckpointVersion;
  if (version != expected)
    r.fail("checkpoint of format version " + std::to_string(version) + "; this fp8sim reads version " +
           std::to_string(expected) +
           (layout.lm ? " for a language-model run" +
                            std::string(version == 3 ? " (version 3 is from before data-parallel training: "
                                                       "start the run again)"
                                                     : "")
                      : ""));
  const auto length = r.get<std::uint64_t>("the length");
  if (length > bytes.size())
    r.fail("truncated checkpoint: " + std::to_string(bytes.size()) + " of its " +
           std::to_string(length) + " bytes");
  if (length < bytes.size())
    r.fail("corrupt checkpoint: " + std::to_string(bytes.size() - length) + " bytes after its end");
  const std::size_t body_end = bytes.size() - kTrailer;
  std::uint32_t stored;
  std::memcpy(&stored, bytes.data() + body_end, 4);
  const std::uint32_t computed = crc32_of(bytes.data(), body_end);
  if (stored != computed)
    r.fail("corrupt checkpoint: checksum mismatch (CRC-32 " + hex32(computed) + ", the file says " +
           hex32(stored) + ")");

  // 2. The fields, each against the run.
  Reader f(bytes.first(body_end), name, body_end);
  f.seek(kHeader);
  auto bad = [&](const std::string& field, const std::string& why) {
    f.fail("corrupt checkpoint: " + field + " " + why);
  };
  if (f.get_str("the fingerprint") != layout.fingerprint)
    f.fail(layout.lm ? "the checkpoint is from a run with other settings (recipe, model, seed, batch, schedule, "
                       "optimizer, evaluation, statistics) or other tokens"
                     : "the checkpoint is from a run with other settings (recipe, model, seed, batch, optimizer, "
                       "limits)");
  CheckpointState s;
  s.step = f.get<std::int64_t>("the step");
  s.epochs_done = f.get<std::int32_t>("the epochs done");
  if (s.step < 0 || s.step > kMaxCheckpointSteps)
    bad("step",
        std::to_string(s.step) + " is outside [0, " + std::to_string(kMaxCheckpointSteps) + "]");
  if (s.epochs_done < 0 || s.epochs_done > kMaxCheckpointEpochs)
    bad("epochs done", std::to_string(s.epochs_done) + " is outside [0, " +
                           std::to_string(kMaxCheckpointEpochs) + "]");
  if (layout.lm && s.epochs_done != 0)
    bad("epochs done", std::to_string(s.epochs_done) + " in a language-model checkpoint (expected 0)");
  if (layout.lm && s.step > layout.iterations)
    bad("step", std::to_string(s.step) + " is past the run's " + std::to_string(layout.iterations) + " iterations");
  const std::int64_t epoch_steps = std::int64_t(s.epochs_done) * layout.steps_per_epoch;
  if (s.step < epoch_steps)
    bad("step", std::to_string(s.step) + " is less than " + std::to_string(s.epochs_done) +
                    " epochs of " + std::to_string(layout.steps_per_epoch) + " steps");
  // Moments exist from the first optimizer step on; SGD has no second moment.
  for (std::size_t i = 0; i < layout.param_sizes.size(); ++i) {
    const std::string p = "parameter " + std::to_string(i);
    ParamState ps;
    ps.value = f.get_vec<float>(p);
    ps.m1 = f.get_vec<float>(p + " first moment");
    ps.m2 = f.get_vec<float>(p + " second moment");
    const std::size_t n = layout.param_sizes[i], moment = s.step > 0 ? n : 0;
    if (ps.value.size() != n)
      bad(p,
          "has " + std::to_string(ps.value.size()) + " elements, the model " + std::to_string(n));
    if (ps.m1.size() != moment)
      bad(p + " first moment",
          "has " + std::to_string(ps.m1.size()) + " elements, expected " + std::to_string(moment));
    const std::size_t m2 = layout.second_moment ? moment : 0;
    if (ps.m2.size() != m2)
      bad(p + " second moment",
          "has " + std::to_string(ps.m2.size()) + " elements, expected " + std::to_string(m2));
    for (float v : ps.m2)
      if (v < 0) bad(p + " second moment", "has a negative element");
    s.params.push_back(std::move(ps));
  }
  // Delayed scaling's ring buffer: allocated at the first amax recorded, one per step.
  const std::size_t slots = layout.history.size();
  for (std::size_t i = 0; i < slots; ++i) {
    const std::string o = "operand slot " + std::to_string(i);
    SlotState st;
    st.history = f.get_vec<float>(o + " amax history");
    st.recorded = f.get<std::int64_t>("an amax counter");
    st.scale = f.get<float>("a scale");
    const std::size_t len = std::size_t(layout.history[i]);
    if (len == 0) {
      if (!st.history.empty() || st.recorded != 0 || st.scale != 1.0f)
        bad(o, "has a delayed-scaling state, its recipe has no delayed scaling");
    } else {
      if (st.recorded < 0 || st.recorded > s.step)
        bad(o + " amax counter",
            std::to_string(st.recorded) + " is outside [0, step " + std::to_string(s.step) + "]");
      if (st.history.size() != (st.recorded ? len : 0))
        bad(o + " amax history", "has " + std::to_string(st.history.size()) +
                                     " entries, expected " + std::to_string(st.recorded ? len : 0));
      for (float v : st.history)
        if (!(v >= 0) || std::isinf(v))
          bad(o + " amax history", "has an entry that is not finite and >= 0");
      if (!(st.scale > 0) || std::isinf(st.scale)) bad(o + " scale", "is not finite and positive");
    }
    s.slots.push_back(std::move(st));
  }
  s.step_loss = f.get_vec<double>("the step losses");
  if (layout.lm && std::int64_t(s.step_loss.size()) != s.step)
    bad("step losses", "number " + std::to_string(s.step_loss.size()) + ", expected one per step (" +
                           std::to_string(s.step) + ")");
  if (!layout.lm && std::int64_t(s.step_loss.size()) != epoch_steps)
    bad("step losses", "number " + std::to_string(s.step_loss.size()) + ", expected " +
                           std::to_string(s.epochs_done) + " epochs of " +
                           std::to_string(layout.steps_per_epoch) + " steps");
  for (double l : s.step_loss)
    if (l < 0) bad("step losses", "include a negative loss");
  const std::size_t gemms = slots / (2 * kRoles);
  const std::size_t rows = f.count("the statistics rows", 8 + 12 + 64);
  for (std::size_t i = 0; i < rows; ++i) {
    StatsRow row;
    row.step = f.get<std::int64_t>("a statistics row");
    row.layer = f.get<std::int32_t>("a statistics row");
    row.role = f.get<std::int32_t>("a statistics row");
    row.operand = f.get<std::int32_t>("a statistics row");
    row.stats = f.get_stats("statistics row " + std::to_string(i));
    if (row.step < 0 || row.step > s.step || row.layer < 0 || std::size_t(row.layer) >= gemms ||
        row.role < 0 || row.role >= kRoles || row.operand < 0 || row.operand > 1 ||
        row.stats.uses < 1)
      bad("statistics row " + std::to_string(i),
          "names no step, GEMM, role or operand of this run");
    s.stats_rows.push_back(row);
  }
  const std::size_t epochs = f.count("the epoch rows", 4 + 32);
  if (epochs != std::size_t(s.epochs_done))
    bad("epoch rows",
        "number " + std::to_string(epochs) + ", epochs done " + std::to_string(s.epochs_done));
  for (std::size_t i = 0; i < epochs; ++i) {
    EpochRow e;
    e.epoch = f.get<std::int32_t>("an epoch row");
    e.train_loss = f.get<double>("an epoch row");
    e.test_loss = f.get<double>("an epoch row");
    e.test_accuracy = f.get<double>("an epoch row");
    e.seconds = f.get<double>("an epoch row");
    if (e.epoch != int(i) + 1 || e.train_loss < 0 || e.test_loss < 0 ||
        !(e.test_accuracy >= 0 && e.test_accuracy <= 1) || !(e.seconds >= 0) ||
        std::isinf(e.seconds))
      bad("epoch row " + std::to_string(i + 1),
          "has an impossible epoch number, loss, accuracy or time");
    s.epoch_rows.push_back(e);
  }
  s.total = f.get_stats("the total statistics");
  const std::size_t pending = f.count("the pending statistics", 64);
  if (pending != slots)
    bad("pending statistics", "number " + std::to_string(pending) + ", the model has " +
                                  std::to_string(slots) + " operand slots");
  for (std::size_t i = 0; i < pending; ++i)
    s.pending.push_back(f.get_stats("pending statistics " + std::to_string(i)));
  if (layout.lm) {
    // Evaluations at every multiple of eval_every and at the last iteration; the run is
    // saved at one of them (or before its first step).
    s.lm = true;
    s.grad_norm = f.get_vec<double>("the gradient norms");
    if (std::int64_t(s.grad_norm.size()) != s.step)
      bad("gradient norms", "number " + std::to_string(s.grad_norm.size()) + ", expected one per step (" +
                                std::to_string(s.step) + ")");
    for (double v : s.grad_norm)
      if (v < 0) bad("gradient norms", "include a negative norm");
    s.clipped = f.get<std::int64_t>("the clipped count");
    if (s.clipped < 0 || s.clipped > s.step)
      bad("clipped count", std::to_string(s.clipped) + " is outside [0, step " + std::to_string(s.step) + "]");
    const std::size_t evals = f.count("the evaluation rows", 32);
    const std::int64_t every = layout.eval_every;
    const std::int64_t points = s.step / every + (s.step == layout.iterations && s.step % every != 0 ? 1 : 0);
    if (std::int64_t(evals) != points)
      bad("evaluation rows", "number " + std::to_string(evals) + ", expected " + std::to_string(points) +
                                 " up to step " + std::to_string(s.step));
    for (std::size_t i = 0; i < evals; ++i) {
      EvalRow e;
      e.iteration = f.get<std::int64_t>("an evaluation row");
      e.train_loss = f.get<double>("an evaluation row");
      e.val_loss = f.get<double>("an evaluation row");
      e.seconds = f.get<double>("an evaluation row");
      const std::int64_t at = std::min(std::int64_t(i + 1) * every, layout.iterations);
      if (e.iteration != at || e.train_loss < 0 || e.val_loss < 0 || !(e.seconds >= 0) || std::isinf(e.seconds))
        bad("evaluation row " + std::to_string(i + 1),
            "has an impossible iteration (expected " + std::to_string(at) + "), loss or time");
      s.eval_rows.push_back(e);
    }
    if (s.step != (s.eval_rows.empty() ? 0 : s.eval_rows.back().iteration))
      bad("step", std::to_string(s.step) + " is not an evaluation point of the run");
    const std::size_t comms = f.count("the communication rows", 32);
    if (std::int64_t(comms) != s.step)
      bad("communication rows", "number " + std::to_string(comms) + ", expected one per step (" +
                                    std::to_string(s.step) + ")");
    auto mu_ok = [](double mu) { return mu >= kMuMin && mu <= kMuMax; };
    for (std::size_t i = 0; i < comms; ++i) {
      CommStats c;
      c.quantized = f.get<std::int64_t>("a communication row");
      c.underflow = f.get<std::int64_t>("a communication row");
      c.overflow = f.get<std::int64_t>("a communication row");
      c.mu = f.get<double>("a communication row");
      if (c.quantized < 0 || c.underflow < 0 || c.underflow > c.quantized || c.overflow < 0 ||
          c.overflow > c.quantized || !mu_ok(c.mu))
        bad("communication row " + std::to_string(i + 1), "has impossible counts or mu");
      s.comm_stats.push_back(c);
    }
    s.comm_mu = f.get<double>("the communication mu");
    if (!mu_ok(s.comm_mu)) bad("communication mu", "is outside [2^-100, 2^100]");
  }
  if (f.pos() != body_end)
    f.fail("corrupt checkpoint: " + std::to_string(body_end - f.pos()) +
           " bytes after the last field");
  return s;
}

}  // namespace fp8sim
