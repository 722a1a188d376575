// Data-parallel training (LmConfig::micro_batches, ranks; the recipe key comm): float32
// sums the same bits for every rank count, M = 1 keeps the bytes of a plain run, a lossy
// ring simulated in one process equals a real run of as many ranks (here threads, each
// with its own LmRun, talking through an in-memory Communicator), the ring against an
// oracle written from its definition, FP8-LM's mu rule, checkpoints, bad settings.
#include <barrier>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8sim/allreduce.hpp"
#include "fp8sim/checkpoint.hpp"
#include "fp8sim/lm.hpp"
#include "sim/checks.hpp"
#include "sim/dp_fixture.hpp"
#include "sim/files.hpp"

using namespace fp8sim;
using test_checks::error_of;
using namespace dp_fixture;

namespace {

// The ranks of a job as threads of this process: every collective posts this rank's
// bytes, waits for all, reads, and waits again.
struct Exchange {
  explicit Exchange(int n) : n(n), sync(n), board(std::size_t(n)), mail(std::size_t(n * n)) {}
  int n;
  std::barrier<> sync;
  std::vector<std::vector<std::byte>> board, mail;  // mail[from n + to]
};

class ThreadComm final : public Communicator {
 public:
  ThreadComm(Exchange& x, int rank) : x_(x), r_(rank) {}
  int rank() const override { return r_; }
  int size() const override { return x_.n; }
  void sendrecv(std::span<const std::byte> send, int to, std::span<std::byte> recv, int from) override {
    x_.mail[std::size_t(r_ * x_.n + to)].assign(send.begin(), send.end());
    x_.sync.arrive_and_wait();
    const std::vector<std::byte>& m = x_.mail[std::size_t(from * x_.n + r_)];
    if (m.size() != recv.size()) throw std::logic_error("sendrecv: sizes differ");
    std::copy(m.begin(), m.end(), recv.begin());
    x_.sync.arrive_and_wait();
  }
  void send(std::span<const std::byte>, int, int) override { throw std::logic_error("not used"); }
  Message receive_any(int) override { throw std::logic_error("not used"); }
  void allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    post(mine);
    for (int q = 0; q < x_.n; ++q)
      std::copy(x_.board[std::size_t(q)].begin(), x_.board[std::size_t(q)].end(),
                all.begin() + std::ptrdiff_t(std::size_t(q) * mine.size()));
    x_.sync.arrive_and_wait();
  }
  void allreduce_max(std::span<double> v) override {
    post(std::as_bytes(v));
    for (std::size_t i = 0; i < v.size(); ++i)
      for (int q = 0; q < x_.n; ++q) {
        double o;
        std::memcpy(&o, x_.board[std::size_t(q)].data() + i * 8, 8);
        if (!std::isnan(v[i]) && (std::isnan(o) || o > v[i])) v[i] = o;
      }
    x_.sync.arrive_and_wait();
  }
  void allreduce_sum(std::span<std::int64_t> v) override {
    post(std::as_bytes(v));
    std::vector<std::int64_t> s(v.size(), 0);
    for (int q = 0; q < x_.n; ++q)
      for (std::size_t i = 0; i < v.size(); ++i) {
        std::int64_t o;
        std::memcpy(&o, x_.board[std::size_t(q)].data() + i * 8, 8);
        s[i] += o;
      }
    std::copy(s.begin(), s.end(), v.begin());
    x_.sync.arrive_and_wait();
  }
  void broadcast(std::span<std::byte> bytes, int root) override {
    post(bytes);
    std::copy(x_.board[std::size_t(root)].begin(), x_.board[std::size_t(root)].end(), bytes.begin());
    x_.sync.arrive_and_wait();
  }
  void barrier() override { x_.sync.arrive_and_wait(); }
  [[noreturn]] void abort(const std::string& why, int) override { throw std::runtime_error(why); }
  std::string description() const override { return "threads"; }

 private:
  void post(std::span<const std::byte> b) {
    x_.board[std::size_t(r_)].assign(b.begin(), b.end());
    x_.sync.arrive_and_wait();
  }
  Exchange& x_;
  int r_;
};

// Runs `body(comm)` on `n` threads, one rank each.
void on_ranks(int n, const std::function<void(Communicator&)>& body) {
  Exchange x(n);
  std::vector<ThreadComm> comms;
  for (int r = 0; r < n; ++r) comms.emplace_back(x, r);
  std::vector<std::thread> t;
  for (int r = 0; r < n; ++r) t.emplace_back([&, r] { body(comms[std::size_t(r)]); });
  for (std::thread& th : t) th.join();
}

// Trains `c` on `n` thread ranks; returns each rank's run, trained.
std::vector<LmRun> real_runs(const LmConfig& c, int n) {
  std::vector<std::unique_ptr<LmRun>> runs(static_cast<std::size_t>(n));
  on_ranks(n, [&](Communicator& comm) {
    auto run = std::make_unique<LmRun>(c, tokens(), comm);
    train_all(*run);
    runs[std::size_t(comm.rank())] = std::move(run);
  });
  std::vector<LmRun> out;
  for (auto& r : runs) out.push_back(std::move(*r));
  return out;
}

}  // namespace

TEST_CASE("dp: float32 communication trains the same bits on 1, 2 and 4 ranks", "[sim][dp]") {
  for (const std::string recipe : {"fp8-hybrid-delayed", "nvfp4"}) {
    INFO(recipe);
    LmConfig c = small(recipe, 4, 1);
    c.model.attention_recipe = recipe == "fp8-hybrid-delayed";  // delayed scaling in the batched products
    LmRun one(c, tokens());
    train_all(one);
    REQUIRE(one.stats_rows.size() > 0);
    REQUIRE(one.divergence() == "");
    for (std::int64_t R : {2, 4}) {
      INFO("ranks " << R);
      c.ranks = R;
      LmRun simulated(c, tokens());
      train_all(simulated);
      CHECK(difference(one, simulated) == "");
      std::vector<LmRun> real = real_runs(c, int(R));
      for (LmRun& r : real) CHECK(difference(one, r) == "");
    }
    // The split matters: 2 micro-batches train other bits than 4.
    LmRun two(small(recipe, 2, 1), tokens());
    train_all(two);
    CHECK(difference(one, two) != "");
  }
}

TEST_CASE("dp: six micro-batches train the same bits on 1, 3 and 6 ranks", "[sim][dp]") {
  // M = 6 is no power of two: R = 1 sums the whole tree, R = 3 and 6 sum complete subtrees.
  LmConfig c = small("fp8-hybrid-delayed", 6, 1);
  c.batch = 12;
  c.iterations = 3;
  LmRun one(c, tokens());
  train_all(one);
  for (std::int64_t R : {3, 6}) {
    INFO("ranks " << R);
    c.ranks = R;
    LmRun simulated(c, tokens());
    train_all(simulated);
    CHECK(difference(one, simulated) == "");
  }
  c.ranks = 3;
  for (LmRun& r : real_runs(c, 3)) CHECK(difference(one, r) == "");
}

TEST_CASE("dp: one micro-batch through the micro-batch driver gives the bytes of a plain run", "[sim][dp]") {
  for (const std::string recipe : {"fp8-hybrid-delayed", "nvfp4"}) {
    INFO(recipe);
    const LmConfig c = small(recipe, 1, 1);
    LmRun plain(c, tokens()), driver(c, tokens());
    driver.use_micro_batch_driver(true);
    train_all(plain);
    train_all(driver);
    CHECK(difference(plain, driver) == "");
    CHECK(plain.comm_stats.size() == std::size_t(c.iterations));
  }
}

TEST_CASE("dp: a lossy ring simulated in one process equals a real run of as many ranks", "[sim][dp]") {
  std::int64_t cases = 0;
  for (const std::string comm : {"bf16", "e4m3fn", "e5m2", "e4m3fn:none"}) {
    for (std::int64_t R : {2, 4}) {
      INFO(comm << ", " << R << " ranks");
      LmConfig c = small("fp8-hybrid-delayed", 4, R);
      c.recipe.comm = parse_comm(comm);
      LmRun simulated(c, tokens());
      train_all(simulated);
      REQUIRE(simulated.comm_stats.size() == std::size_t(c.iterations));
      std::int64_t quantized = 0;
      for (const CommStats& s : simulated.comm_stats) quantized += s.quantized;
      // R chunks per rank: R - 1 sends of partial sums and one of the reduced chunk.
      CHECK(quantized == c.iterations * R * simulated.model().parameter_count());
      for (LmRun& r : real_runs(c, int(R))) CHECK(difference(simulated, r) == "");
      // Lossy communication changes the numbers (against float32 on as many ranks).
      LmConfig exact = c;
      exact.recipe.comm = GradComm{};
      LmRun fp32(exact, tokens());
      train_all(fp32);
      CHECK(difference(simulated, fp32) != "");
      ++cases;
    }
  }
  CHECK(cases == 8);
}

TEST_CASE("dp: the ring all-reduce against a restatement from its definition", "[sim][dp]") {
  // Each chunk c travels from rank c around the ring: the partial sum is quantized at
  // every send (nearest even, saturating), the receiver adds its own value in float32, the
  // last rank's sum is quantized once more for the all-gather. fp8emu's scalar conversion
  // is the reference; overflow is where the non-saturating conversion is not finite.
  std::int64_t checked = 0;
  for (const fp8emu::Format f : {fp8emu::Format(fp8emu::formats::e4m3fn{}), fp8emu::Format(fp8emu::formats::e5m2{}),
                                 fp8emu::Format(fp8emu::formats::bfloat16{})}) {
    for (int R : {2, 3, 4}) {
      const std::int64_t n = 11;
      std::vector<std::vector<float>> y(static_cast<std::size_t>(R), std::vector<float>(static_cast<std::size_t>(n)));
      const double big = fp8emu::max_finite(f) * 0.6;
      for (int r = 0; r < R; ++r)
        for (std::int64_t i = 0; i < n; ++i) {
          // Ordinary values, some that sum past the maximum, some far below the smallest.
          const double v = i % 4 == 0 ? big : i % 4 == 1 ? 1e-44 * (r + 1) : (0.37 + 0.11 * r) * (1 + i) * (r % 2 ? -1 : 1);
          y[std::size_t(r)][std::size_t(i)] = float(v);
        }
      const fp8emu::ConvertOptions rne{fp8emu::Rounding::nearest_even, fp8emu::Saturation::finite};
      const fp8emu::ConvertOptions unsat{fp8emu::Rounding::nearest_even, fp8emu::Saturation::none};
      std::vector<float> expect(static_cast<std::size_t>(n));
      CommStats want;
      auto send = [&](float x) {
        const double q = fp8emu::decode(f, fp8emu::encode(f, double(x), rne));
        ++want.quantized;
        want.underflow += x != 0 && q == 0;
        want.overflow += !std::isfinite(fp8emu::decode(f, fp8emu::encode(f, double(x), unsat)));
        return q;
      };
      for (int c = 0; c < R; ++c) {
        const std::int64_t b = c * n / R, e = (c + 1) * n / R;
        for (std::int64_t i = b; i < e; ++i) {
          float partial = y[std::size_t(c)][std::size_t(i)];
          for (int k = 1; k < R; ++k) partial = float(send(partial) + double(y[std::size_t((c + k) % R)][std::size_t(i)]));
          expect[std::size_t(i)] = float(send(partial));
        }
        // Chunks with no element send nothing but still count as empty.
      }
      INFO(fp8emu::format_name(f) << ", " << R << " ranks");
      CommStats got;
      const std::vector<float> sim = ring_allreduce_simulated(f, y, got);
      CHECK(std::memcmp(sim.data(), expect.data(), expect.size() * 4) == 0);
      CHECK(got.quantized == want.quantized);
      CHECK(got.underflow == want.underflow);
      CHECK(got.overflow == want.overflow);
      CHECK(want.underflow > 0);
      CHECK(want.overflow > 0);
      // The real driver on threads: every rank ends with the same values, its counts sum to
      // the simulation's.
      std::vector<std::vector<float>> out(static_cast<std::size_t>(R));
      std::vector<CommStats> counts(static_cast<std::size_t>(R));
      on_ranks(R, [&](Communicator& comm) {
        std::vector<float> v = y[std::size_t(comm.rank())];
        ring_allreduce(comm, f, v, counts[std::size_t(comm.rank())]);
        out[std::size_t(comm.rank())] = v;
      });
      CommStats total;
      for (int r = 0; r < R; ++r) {
        CHECK(std::memcmp(out[std::size_t(r)].data(), expect.data(), expect.size() * 4) == 0);
        total.add_counts(counts[std::size_t(r)]);
      }
      CHECK(total.quantized == want.quantized);
      CHECK(total.overflow == want.overflow);
      ++checked;
    }
  }
  CHECK(checked == 9);
}

TEST_CASE("dp: the float32 tree sum pairs neighbours level by level", "[sim][dp]") {
  // 7 leaves: ((0 + 1) + (2 + 3)) + ((4 + 5) + 6), restated with floats whose sum depends
  // on the order; pushing the subtree sums of 4 + 2 + 1 leaves gives the same bits.
  const std::vector<float> v = {1.0f, 0.0f, 0x1p-24f, 0x1p-24f, 0x1p-23f, -1.0f, 0x1p-25f};
  const float want = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + v[6]);
  TreeSum t;
  for (float x : v) t.push(std::span<const float>(&x, 1));
  CHECK(t.take() == std::vector<float>{want});
  CHECK(want != (((((v[0] + v[1]) + v[2]) + v[3]) + v[4]) + v[5]) + v[6]);  // the order matters here
  const float left = (v[0] + v[1]) + (v[2] + v[3]), mid = v[4] + v[5];
  t.push(std::span<const float>(&left, 1), 4);
  t.push(std::span<const float>(&mid, 1), 2);
  t.push(std::span<const float>(&v[6], 1), 1);
  CHECK(t.take() == std::vector<float>{want});
}

TEST_CASE("dp: FP8-LM's mu halves past 0.001% overflow and grows 2x per 1000 steps otherwise", "[sim][dp]") {
  CommStats s;
  s.quantized = 1000000;
  s.overflow = 10;  // exactly 0.001%: grows
  CHECK(next_mu(1.0, s) == std::pow(2.0, 0.001));
  s.overflow = 11;
  CHECK(next_mu(1.0, s) == 0.5);
  CHECK(next_mu(0x1p-100, s) == 0x1p-100);
  s.overflow = 0;
  CHECK(next_mu(0x1p100, s) == 0x1p100);
  double mu = 1;
  for (int i = 0; i < 1000; ++i) mu = next_mu(mu, s);
  CHECK(std::fabs(mu - 2.0) < 1e-12);
  s.quantized = 0;
  CHECK(next_mu(0.25, s) == 0.25);
  // In a run: each step's mu follows from the previous step's counts.
  LmConfig c = small("fp8-hybrid-delayed", 4, 4);
  c.recipe.comm = parse_comm("e4m3fn");
  LmRun run(c, tokens());
  train_all(run);
  CHECK(run.comm_stats[0].mu == 1.0);
  bool halved = false;
  for (std::size_t i = 0; i < run.comm_stats.size(); ++i) {
    const CommStats& x = run.comm_stats[i];
    const double next = double(x.overflow) > 1e-5 * double(x.quantized) ? x.mu / 2 : x.mu * std::pow(2.0, 0.001);
    halved |= next < x.mu;
    CHECK((i + 1 < run.comm_stats.size() ? run.comm_stats[i + 1].mu : run.comm_mu) == next);
  }
  CHECK(halved);  // 4 ranks at mu 1 overflow: the sum of 4 scaled values passes the maximum
}

TEST_CASE("dp: resuming a run with FP8 communication gives the uninterrupted run's bytes", "[sim][dp]") {
  const std::string p = test_files::temp_path("fp8sim-dp-", "dp.ckpt");
  LmConfig c = small("fp8-hybrid-delayed", 4, 2);
  c.recipe.comm = parse_comm("e5m2");
  LmRun whole(c, tokens());
  train_all(whole);
  LmRun first(c, tokens());
  first.train_until_eval();
  first.save(p);
  LmRun resumed(c, tokens());
  resumed.load(p);
  CHECK(resumed.comm_mu == first.comm_mu);
  CHECK(resumed.comm_mu != 1.0);
  train_all(resumed);
  CHECK(difference(whole, resumed) == "");
  // Real ranks resume alike, each from its own file.
  std::vector<std::unique_ptr<LmRun>> ranks(2);
  on_ranks(2, [&](Communicator& comm) {
    const std::string mine = p + std::to_string(comm.rank());
    LmRun part(c, tokens(), comm);
    part.train_until_eval();
    part.save(mine);
    auto rest = std::make_unique<LmRun>(c, tokens(), comm);
    rest->load(mine);
    train_all(*rest);
    ranks[std::size_t(comm.rank())] = std::move(rest);
  });
  for (auto& r : ranks) CHECK(difference(whole, *r) == "");
  // A file of version 3 (before data-parallel training) is refused with a reason.
  std::vector<std::uint8_t> bytes = read_checkpoint_file(p);
  const std::uint32_t v3 = 3;
  std::memcpy(bytes.data() + 8, &v3, 4);
  CHECK(error_of([&] { decode_checkpoint(bytes, first.checkpoint_layout(), p); }) ==
        p + ": checkpoint of format version 3; this fp8sim reads version 4 for a language-model run (version 3 "
            "is from before data-parallel training: start the run again)");
  // The fingerprint names the split; another rank count is another run.
  CHECK(small("fp32", 2, 1).fingerprint() != small("fp32", 4, 1).fingerprint());
  CHECK(small("fp32", 4, 1).fingerprint() != small("fp32", 4, 2).fingerprint());
  CHECK(small("fp32", 1, 1).fingerprint().find("micro_batches") == std::string::npos);
  LmConfig four = c;
  four.ranks = 4;
  LmRun other(four, tokens());
  CHECK(error_of([&] { other.load(p); }).find("other settings") != std::string::npos);
  std::filesystem::remove_all(std::filesystem::path(p).parent_path());
}

TEST_CASE("dp: bad data-parallel settings and comm values are refused with the reason", "[sim][dp]") {
  auto build = [](LmConfig c) { return error_of([&] { LmRun r(c, tokens()); }); };
  CHECK(build(small("fp32", 3, 1)) == "micro-batches must be >= 1 and divide batch");
  CHECK(build(small("fp32", 0, 1)) == "micro-batches must be >= 1 and divide batch");
  CHECK(build(small("fp32", 4, 3)) == "ranks must be >= 1 and divide micro-batches");
  CHECK(build(small("fp32", 4, 0)) == "ranks must be >= 1 and divide micro-batches");
  LmConfig six = small("fp32", 8, 1);
  six.batch = 12;
  six.micro_batches = 6;
  six.ranks = 2;
  CHECK(build(six).find("micro-batches / ranks must be a power of two when ranks > 1") == 0);
  six.ranks = 3;  // 2 micro-batches per rank
  CHECK(build(six) == "no error");
  LmConfig many = small("fp32", 8, 1);
  many.iterations = std::int64_t(1) << 38;
  CHECK(build(many) == "iterations x micro-batches must be at most 2^40");
  // ranks must equal a real job's size.
  std::vector<std::string> errors(4);
  on_ranks(4, [&](Communicator& comm) {
    errors[std::size_t(comm.rank())] = error_of([&] { LmRun r(small("fp32", 4, 2), tokens(), comm); });
  });
  for (const std::string& e : errors)
    CHECK(e == "ranks (2) must equal the communicator's size (4) in a job of several processes");
  // The key's values.
  CHECK(error_of([] { parse_comm("e4m3"); }) == "comm: unknown format 'e4m3' (one of fp32, bf16, e4m3fn, e5m2)");
  CHECK(error_of([] { parse_comm("fp32:auto"); }) ==
        "comm: fp32 communication sums exactly in a fixed order and takes no scaling");
  CHECK(error_of([] { parse_comm("bf16:max"); }) == "comm: unknown scaling 'max' (one of none, auto)");
  CHECK(error_of([] { parse_comm("e5m2:auto:none"); }) ==
        "comm: 'e5m2:auto:none' has more than one ':' (FORMAT[:SCALING])");
  Recipe r = named_recipe("fp32");
  r.comm.scaling = CommScaling::automatic;
  CHECK(error_of([&] { check_recipe(r); }) == "recipe fp32: comm: fp32 communication takes no scaling");
  // Every value round-trips through its spec and through recipe_text; the default writes nothing.
  std::int64_t specs = 0;
  for (const std::string v : {"fp32", "bf16", "bf16:auto", "e4m3fn", "e4m3fn:none", "e5m2", "e5m2:none"}) {
    const GradComm g = parse_comm(v);
    CHECK(comm_spec(g) == v);
    Recipe x = named_recipe("fp8-hybrid-delayed");
    set_recipe_key(x, "comm", v);
    const std::string text = recipe_text(x);
    CHECK((text.find("\ncomm = " + v + "\n") != std::string::npos) == (v != "fp32"));
    ++specs;
  }
  CHECK(specs == 7);
  CHECK(parse_comm("e4m3fn:auto") == parse_comm("e4m3fn"));
  CHECK(parse_comm("bf16:none") == parse_comm("bf16"));
}
