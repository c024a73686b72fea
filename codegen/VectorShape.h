// The vector shape the kernels are written for on a target: lanes per vector
// and the number of vector registers (which sets the matmul's register
// blocking, codegen/LowerMatMul.cpp), and the function attributes that make
// LLVM's instruction selection keep that width.
//
// The rule: the widest vector registers the target has (512-bit on AVX-512,
// 256-bit on AVX2, 128-bit on SSE / NEON), whatever the CPU's tuning prefers.
// LLVM tunes the Intel AVX-512 server and client cores (skylake-avx512 ...
// sapphirerapids, rocketlake) with `prefer-vector-width=256`, because mixing a
// little 512-bit code into scalar code lowers the clock of the whole core.
// mlpc's kernels are the opposite case: long runs of dense FMAs, where the
// 512-bit form retires twice the FLOPs per instruction. Measured (bench/
// PERFORMANCE.md): on an Intel Xeon (Sapphire Rapids class, LLVM
// `sapphirerapids`) the makemore step went from 48 to 35 us with 512-bit
// vectors (FMA peak: 176 GFLOP/s at 512 bits, 94 at 256); the issue's
// Rocket Lake measurement: 30.6 -> 23.0 us. AMD Zen 4/5 are tuned for 512 bits
// by LLVM already. A target without AVX-512 (`--cpu x86-64-v3`) gets 256
// bits, 16 registers.
//
// `requestedBits` (CompileOptions::vectorBits, `--vector-bits`) caps the width
// (0: the rule); a width the target lacks falls back to the widest it has.
#pragma once

#include <llvm/IR/Function.h>
#include <llvm/Target/TargetMachine.h>

namespace mlpc::codegen {

struct VectorShape {
  unsigned bits = 128;
  unsigned lanes = 4;     // f32 per vector
  unsigned registers = 8; // vector registers of that width
};

// target-cpu, target-features and the vector-width attributes of the rule above.
void addTargetAttributes(llvm::Function &f, const llvm::TargetMachine &tm, unsigned requestedBits);

// The shape a function with those attributes is compiled for.
VectorShape vectorShapeOf(const llvm::Function &f, const llvm::TargetMachine &tm);

// The same, for a target and a request without a function at hand (what
// `mlpc bench` reports).
VectorShape chooseVectorShape(const llvm::TargetMachine &tm, unsigned requestedBits);

} // namespace mlpc::codegen
