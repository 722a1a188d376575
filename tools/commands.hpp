// fp8emu CLI: the commands, one source file each (tools/cmd_NAME.cpp). Each takes the
// arguments after its name, prints its result, returns the exit status and throws
// UsageError (args.hpp) for bad usage or bad input.
#pragma once

namespace fp8emu::cli {

int cmd_formats(int argc, char** argv);
int cmd_explain(int argc, char** argv);
int cmd_table(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_dequantize(int argc, char** argv);
int cmd_gemm(int argc, char** argv);
int cmd_compare(int argc, char** argv);
int cmd_arith(int argc, char** argv);
int cmd_plot(int argc, char** argv);

}  // namespace fp8emu::cli
