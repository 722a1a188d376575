// Checkpoints: a resumed run equals an uninterrupted one; a damaged byte anywhere, a
// changed float, a foreign checkpoint and every field outside what the run can have are
// refused with the file's name and the reason, and leave the run as it was.
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>

#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "fp8sim/checkpoint.hpp"
#include "fp8sim/train.hpp"
#include "sim/files.hpp"
#include "sim/models.hpp"

using namespace fp8sim;
namespace fs = std::filesystem;

namespace {

// A tiny labelled set of 28 x 28 images with pixel values from a fixed pattern.
Dataset tiny_set(std::int64_t count, int salt) {
  Dataset d;
  d.count = count, d.rows = 28, d.cols = 28, d.classes = 10;
  d.x.resize(std::size_t(count * 784));
  for (std::size_t i = 0; i < d.x.size(); ++i)
    d.x[i] = float((i * 7919 + std::size_t(salt) * 131) % 256) / 255.0f;
  for (std::int64_t i = 0; i < count; ++i) d.y.push_back(std::uint8_t((i * 3 + salt) % 10));
  return d;
}

const Dataset& train_set() {
  static const Dataset d = tiny_set(64, 1);
  return d;
}
const Dataset& test_set() {
  static const Dataset d = tiny_set(32, 2);
  return d;
}

// The CNN (about 20 000 parameters) under delayed scaling: every kind of state is saved.
RunConfig small_config(const std::string& recipe = "fp8-hybrid-delayed") {
  RunConfig c;
  c.recipe = named_recipe(recipe);
  c.model = "cnn";
  c.seed = 5;
  c.epochs = 2;
  c.batch = 16;
  c.log_every = 2;
  c.exec.threads = 1;
  return c;
}

// A run of `c` on the CNN.
Run make_run(RunConfig c) {
  fp8sim::Model m = test_models::cnn(train_set(), c.seed);
  return Run(std::move(c), std::move(m), train_set(), test_set());
}

std::string temp_path(const std::string& name) { return test_files::temp_path("fp8sim-checkpoint-", name); }
using test_files::read_bytes;
using test_files::write_bytes;

std::string load_error(const std::string& path, RunConfig c = small_config()) {
  Run r = make_run(std::move(c));
  try {
    r.load(path);
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

// A checkpoint after one epoch of the small run, and the run that wrote it.
const std::vector<std::uint8_t>& one_epoch_checkpoint() {
  static const std::vector<std::uint8_t> bytes = [] {
    Run r = make_run(small_config());
    r.train_epoch();
    const std::string p = temp_path("one-epoch.ckpt");
    r.save(p);
    return read_bytes(p);
  }();
  return bytes;
}

// Sets the CRC-32 at the end of a checkpoint to that of the bytes before it (zlib).
void fix_crc(std::vector<std::uint8_t>& b) {
  const std::uint32_t crc = std::uint32_t(::crc32(0, b.data(), uInt(b.size() - 4)));
  std::memcpy(b.data() + b.size() - 4, &crc, 4);
}

// Decodes the one-epoch checkpoint, changes it, encodes it again (a valid CRC), and
// returns the error of loading it.
std::string error_after(const std::function<void(CheckpointState&)>& change) {
  Run r = make_run(small_config());
  CheckpointState s = decode_checkpoint(one_epoch_checkpoint(), r.checkpoint_layout(), "test");
  change(s);
  const std::string p = temp_path("changed.ckpt");
  write_bytes(p, encode_checkpoint(small_config().fingerprint(), s));
  return load_error(p);
}

bool same_rows(const Run& a, const Run& b) {
  if (a.epoch_rows.size() != b.epoch_rows.size() || a.step_loss != b.step_loss) return false;
  for (std::size_t e = 0; e < a.epoch_rows.size(); ++e) {
    const EpochRow &x = a.epoch_rows[e], &y = b.epoch_rows[e];
    if (x.epoch != y.epoch || x.train_loss != y.train_loss || x.test_loss != y.test_loss ||
        x.test_accuracy != y.test_accuracy)
      return false;
  }
  return a.stats_rows.size() == b.stats_rows.size() && a.total.count == b.total.count &&
         a.total.signal == b.total.signal && a.total.noise == b.total.noise;
}

}  // namespace

TEST_CASE("checkpoint: a resumed run ends with the numbers of an uninterrupted one",
          "[sim][checkpoint]") {
  Run whole = make_run(small_config());
  whole.train_epoch();
  whole.train_epoch();
  const std::string p = temp_path("resume.ckpt");
  write_bytes(p, one_epoch_checkpoint());
  Run resumed = make_run(small_config());
  resumed.load(p);
  CHECK(resumed.epochs_done() == 1);
  resumed.train_epoch();
  CHECK(resumed.done());
  CHECK(same_rows(whole, resumed));
  CHECK(whole.step_loss.size() == 8);
  // Saved again and read back: the same state, field by field.
  resumed.save(p);
  Run again = make_run(small_config());
  again.load(p);
  CHECK(again.epochs_done() == 2);
  CHECK(same_rows(whole, again));
  Run layout_run = make_run(small_config());
  const CheckpointState a = decode_checkpoint(read_bytes(p), layout_run.checkpoint_layout(), p);
  const CheckpointState b = decode_checkpoint(encode_checkpoint(small_config().fingerprint(), a),
                                              layout_run.checkpoint_layout(), p);
  REQUIRE(a.params.size() == b.params.size());
  for (std::size_t i = 0; i < a.params.size(); ++i) {
    CHECK(a.params[i].value == b.params[i].value);
    CHECK(a.params[i].m2 == b.params[i].m2);
  }
  REQUIRE(a.slots.size() == 18);  // 3 GEMMs x 3 roles x 2 operands
  for (std::size_t i = 0; i < a.slots.size(); ++i) {
    CHECK(a.slots[i].history == b.slots[i].history);
    CHECK(a.slots[i].recorded == b.slots[i].recorded);
  }
  // Delayed scaling kept its history: fprop of every GEMM recorded one amax per step.
  CHECK(a.slots[0].recorded == 8);
  CHECK(a.slots[0].history.size() == 1024);
  CHECK(encode_checkpoint(small_config().fingerprint(), a) == read_bytes(p));
}

TEST_CASE("checkpoint: a damaged byte anywhere is refused with the file name",
          "[sim][checkpoint]") {
  const std::vector<std::uint8_t>& good = one_epoch_checkpoint();
  const std::string p = temp_path("damaged.ckpt");
  // Every byte of the first and last 256, and every 97th byte in between.
  std::vector<std::size_t> at;
  for (std::size_t i = 0; i < good.size(); ++i)
    if (i < 256 || i + 256 >= good.size() || i % 97 == 0) at.push_back(i);
  int refused = 0, named = 0;
  for (std::size_t i : at) {
    std::vector<std::uint8_t> b = good;
    b[i] ^= 0x10;
    write_bytes(p, b);
    const std::string e = load_error(p);
    refused += e != "no error";
    named += e.rfind(p + ": ", 0) == 0;
  }
  CHECK(refused == int(at.size()));
  CHECK(named == int(at.size()));
  CHECK(at.size() > 2500);
  // Every truncation point of the header, and cuts inside the body.
  for (std::size_t n : {std::size_t(0), std::size_t(7), std::size_t(8), std::size_t(19),
                        std::size_t(100), good.size() / 2, good.size() - 1}) {
    write_bytes(p, std::vector<std::uint8_t>(good.begin(), good.begin() + std::ptrdiff_t(n)));
    const std::string e = load_error(p);
    CHECK(e.rfind(p + ": ", 0) == 0);
    if (n >= 20) CHECK(e.find("truncated checkpoint") != std::string::npos);
  }
  std::vector<std::uint8_t> longer = good;
  longer.push_back(0);
  write_bytes(p, longer);
  CHECK(load_error(p).find("bytes after its end") != std::string::npos);
  CHECK(load_error(temp_path("missing.ckpt")).find("cannot open the checkpoint") !=
        std::string::npos);
}

TEST_CASE("checkpoint: a float overwritten by 1e30 fails the checksum", "[sim][checkpoint]") {
  std::vector<std::uint8_t> b = one_epoch_checkpoint();
  const float big = 1e30f;
  std::memcpy(b.data() + b.size() / 2 / 4 * 4, &big, 4);  // inside the parameters
  const std::string p = temp_path("float.ckpt");
  write_bytes(p, b);
  const std::string e = load_error(p);
  CHECK(e.find(p + ": corrupt checkpoint: checksum mismatch (CRC-32 0x") != std::string::npos);
  // The same file with a recomputed CRC is accepted: the checksum is what caught it.
  fix_crc(b);
  write_bytes(p, b);
  CHECK(load_error(p) == "no error");
}

TEST_CASE("checkpoint: a field outside what the run can have, with a valid checksum",
          "[sim][checkpoint]") {
  // epochs done = INT_MAX, patched in the bytes and the CRC recomputed with zlib: magic,
  // version, length (20 bytes), the fingerprint's length and text, the step, the epochs.
  {
    std::vector<std::uint8_t> b = one_epoch_checkpoint();
    std::uint64_t flen;
    std::memcpy(&flen, b.data() + 20, 8);
    const std::int32_t epochs = INT_MAX;
    std::memcpy(b.data() + 20 + 8 + flen + 8, &epochs, 4);
    fix_crc(b);
    const std::string p = temp_path("epochs.ckpt");
    write_bytes(p, b);
    CHECK(load_error(p) ==
          p + ": corrupt checkpoint: epochs done 2147483647 is outside [0, 1048576]");
  }
  auto has = [](const std::string& e, const std::string& what) {
    INFO(e);
    return e.rfind("test: ", 0) != 0 && e.find(what) != std::string::npos;
  };
  CHECK(has(error_after([](CheckpointState& s) { s.epochs_done = 2; }),
            "step 4 is less than 2 epochs of 4 steps"));
  CHECK(has(error_after([](CheckpointState& s) { s.epochs_done = -1; }),
            "epochs done -1 is outside"));
  CHECK(has(error_after([](CheckpointState& s) { s.step = -5; }), "step -5 is outside"));
  CHECK(error_after([](CheckpointState& s) { s.step = 9; }) ==
        "no error");  // steps outside epochs: valid
  CHECK(has(error_after([](CheckpointState& s) { s.slots[0].recorded = -1; }),
            "operand slot 0 amax counter -1 is outside [0, step 4]"));
  CHECK(has(error_after([](CheckpointState& s) {
              s.slots[3].recorded = std::numeric_limits<std::int64_t>::max();
            }),
            "operand slot 3 amax counter 9223372036854775807 is outside"));
  CHECK(has(error_after([](CheckpointState& s) { s.slots[1].history.pop_back(); }),
            "operand slot 1 amax history has 1023 entries, expected 1024"));
  CHECK(has(error_after([](CheckpointState& s) { s.slots[4].history[5] = NAN; }),
            "not finite and >= 0"));
  CHECK(has(error_after([](CheckpointState& s) { s.slots[2].scale = 0; }),
            "operand slot 2 scale is not finite"));
  CHECK(has(error_after([](CheckpointState& s) { s.params[1].value.push_back(0); }),
            "parameter 1 has 17 elements, the model 16"));
  CHECK(has(error_after([](CheckpointState& s) { s.params[0].m2.clear(); }),
            "parameter 0 second moment has 0 elements, expected 144"));
  CHECK(has(error_after([](CheckpointState& s) { s.params[0].m2[3] = -1; }),
            "has a negative element"));
  CHECK(has(error_after([](CheckpointState& s) { s.step_loss.pop_back(); }),
            "step losses number 3, expected 1"));
  CHECK(has(error_after([](CheckpointState& s) { s.stats_rows[0].layer = 3; }),
            "statistics row 0 names no"));
  CHECK(has(error_after([](CheckpointState& s) {
              s.stats_rows[1].stats.flushed = s.stats_rows[1].stats.nonzero + 1;
            }),
            "impossible statistics in statistics row 1"));
  CHECK(has(error_after([](CheckpointState& s) { s.epoch_rows[0].test_accuracy = 2; }),
            "epoch row 1 has"));
  CHECK(has(error_after([](CheckpointState& s) { s.epoch_rows.clear(); }),
            "epoch rows number 0, epochs done 1"));
  CHECK(has(error_after([](CheckpointState& s) { s.pending.pop_back(); }),
            "pending statistics number 17"));
  CHECK(has(error_after([](CheckpointState& s) { s.total.count = -1; }),
            "impossible statistics in the total"));
  CHECK(error_after([](CheckpointState&) {}) == "no error");
}

TEST_CASE("checkpoint: another run's checkpoint is refused; a refused load changes nothing",
          "[sim][checkpoint]") {
  const std::string p = temp_path("foreign.ckpt");
  write_bytes(p, one_epoch_checkpoint());
  RunConfig other = small_config();
  other.seed = 6;
  CHECK(load_error(p, other) ==
        p + ": the checkpoint is from a run with other settings (recipe, model, seed, "
            "batch, optimizer, limits)");
  // A recipe without delayed scaling, even with the fingerprint forged, has no amax state.
  {
    CheckpointState s =
        decode_checkpoint(one_epoch_checkpoint(),
                          make_run(small_config()).checkpoint_layout(), p);
    write_bytes(p, encode_checkpoint(small_config("fp8-hybrid-current").fingerprint(), s));
    CHECK(load_error(p, small_config("fp8-hybrid-current")) ==
          p + ": corrupt checkpoint: operand slot 0 has a delayed-scaling state, its recipe has no "
              "delayed scaling");
  }
  // A run that refused a checkpoint trains as a fresh one.
  std::vector<std::uint8_t> b = one_epoch_checkpoint();
  b[b.size() - 10] ^= 1;
  write_bytes(p, b);
  Run fresh = make_run(small_config()), refused = make_run(small_config());
  CHECK_THROWS_AS(refused.load(p), DataError);
  CHECK(refused.epochs_done() == 0);
  fresh.train_epoch();
  refused.train_epoch();
  CHECK(same_rows(fresh, refused));
}
