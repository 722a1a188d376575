#include <fp8emu/convert.hpp>
#include <fp8emu/quantize_matrix.hpp>
#include <fp8sim/comm.hpp>
#include <fp8sim/recipe.hpp>
#include <fp8sim/train.hpp>

#include <cstdio>
#include <memory>
#include <vector>

int main() {
  const fp8emu::Format f = fp8emu::parse_format("e4m3fn");
  const std::uint32_t c = fp8emu::encode(f, 3.3);
  std::printf("e4m3fn(3.3) = 0x%02X = %g\n", c, fp8emu::decode(f, c));
  // One MX block of 32 ones: exponent floor(log2 1) - 8 = -8, codes of 256 (0x78).
  const std::vector<float> x(32, 1.0f);
  fp8emu::MatrixQuantizeOptions o;
  o.scaling = fp8emu::MatrixScaling::mx;
  const fp8emu::QuantizedMatrix q = fp8emu::quantize_matrix({x.data(), 1, 32}, f, o);
  std::printf("mx scale code %u, first code 0x%02X\n", unsigned(q.code_scales[0]),
              unsigned(reinterpret_cast<const std::uint8_t*>(q.storage.data())[0]));
  // The simulator: a named recipe and a model built from a layer list.
  const fp8sim::Recipe r = fp8sim::named_recipe("mxfp8");
  std::vector<std::unique_ptr<fp8sim::Layer>> layers;
  layers.push_back(std::make_unique<fp8sim::Linear>(0, 4, 2));
  const fp8sim::Model m(std::move(layers), {4}, 1);
  std::printf("recipe %s, model %s\n", r.name.c_str(), m.description().c_str());
  // The communicator links MPI where fp8sim was built with it (FP8EMU_MPI).
  std::printf("MPI %s, world %s\n", fp8sim::mpi_built() ? "built" : "not built",
              fp8sim::local_communicator().description().c_str());
  return c == 0x45 && q.code_scales[0] == 119 && r.name == "mxfp8" ? 0 : 1;
}
