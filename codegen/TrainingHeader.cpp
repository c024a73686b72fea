// The C header that goes with a training object (TrainingObject.h). Plain
// C99 that also compiles as C++; every number comes from the TrainingLayout
// the object was built from.
#include "codegen/TrainingObject.h"

#include "codegen/CText.h"

#include <fmt/format.h>

namespace mlpc {
namespace {

using ctext::commentSafe;

std::string scheduleText(const TrainingModel &model) {
  if (model.schedule.empty())
    return "0.1";
  std::string s;
  for (const LearningRatePhase &p : model.schedule)
    s += fmt::format("{}{:g}{}", s.empty() ? "" : ", ", p.lr,
                     p.fromStep ? fmt::format(" from step {}", p.fromStep) : "");
  return s;
}

// The documented functions.
std::string apiDeclarations(const TrainingModel &model) {
  const std::string &M = model.name;
  std::string h;
  auto line = [&](const std::string &s) { h += s + "\n"; };
  line("/* Bytes of one training state: parameters, optimizer state (none for SGD),");
  line(" * running statistics, step count, learning-rate override, workspace. Allocate");
  line(" * it 64-byte aligned (aligned_alloc(64, ...)); it needs no other memory. */");
  line(fmt::format("size_t {}_state_bytes(void);", M));
  line("/* Initialises a state: step 0, the schedule's learning rate, and the parameters");
  line(model.weights ? " * of the checkpoint embedded at compile time (seed is unused)."
                     : " * the model's initialisers give with this seed: the same values as");
  if (!model.weights)
    line(" * `mlpc train --seed SEED` starts from. Running statistics start at 0 / 1.");
  line(" * Returns 0 (-1 for a NULL state). */");
  line(fmt::format("int {}_init(void *state, uint64_t seed);", M));
  line(fmt::format("/* One SGD step on {}_BATCH rows: X int32_t[BATCH][CONTEXT] contexts, Y", M));
  line(" * int32_t[BATCH] targets, every index in [0, VOCAB_SIZE). The learning rate is");
  line(" * the schedule's for the state's step count unless set_lr overrides it. Returns");
  line(" * the minibatch loss (before the update). Returns NaN and leaves the state");
  line(" * unchanged when a pointer is NULL, an index is out of range or anything (loss,");
  line(" * parameter, statistic) became non-finite. */");
  line(fmt::format("float {}_train_step(void *state, const int32_t *X, const int32_t *Y);", M));
  line("/* Overrides the schedule's learning rate; a negative lr returns to the schedule. */");
  line(fmt::format("void {}_set_lr(void *state, float lr);", M));
  line("/* Steps taken (successful train_step calls since init). */");
  line(fmt::format("uint64_t {}_step(const void *state);", M));
  line("/* Inference with the running statistics: logits float[n][VOCAB_SIZE] of n >= 1");
  line(" * rows of context X int32_t[n][CONTEXT]. Returns 0, or -1 (writing nothing) if");
  line(" * n < 1, a pointer is NULL or an index is out of range. */");
  line(fmt::format("int {}_forward(const void *state, const int32_t *X, int64_t n, float *logits);",
                   M));
  line("/* Replaces every BatchNorm's running statistics by the exact mean and");
  line(" * (Bessel-corrected) variance of its input over the n rows of X, layer by layer,");
  line(" * as `mlpc train` does at the end (over its training split). n < 2 changes");
  line(" * nothing. Returns 0, or -1 as forward does. */");
  line(fmt::format("int {}_calibrate(void *state, const int32_t *X, int64_t n);", M));
  line("/* Tensor i < PARAM_COUNT: its name (checkpoint tensor name), or NULL. */");
  line(fmt::format("const char *{}_param_name(int64_t i);", M));
  line("/* Tensor i's shape into dims[0..rank) (dims may be NULL; at most 8); returns");
  line(" * the rank, or -1 for an unknown i. */");
  line(fmt::format("int {}_param_shape(int64_t i, int64_t *dims);", M));
  line("/* The float data of the tensor called name inside the state (row-major),");
  line(" * and its element count in *numel (if numel is not NULL); NULL if unknown. */");
  line(fmt::format("float *{}_param(void *state, const char *name, int64_t *numel);", M));
  return h;
}

// MLPC_MODEL_* for every function and constant.
std::string aliases(const std::string &M) {
  std::string h;
  auto line = [&](const std::string &s) { h += s + "\n"; };
  line("/* The same, under names that do not depend on the model");
  line(" * (examples/train_names.c). */");
  line("#define MLPC_MODEL_TRAINING 1");
  for (const char *fn : {"state_bytes", "init", "train_step", "set_lr", "step", "forward",
                         "calibrate", "param_name", "param_shape", "param"}) {
    std::string upper;
    for (const char *c = fn; *c; ++c)
      upper += static_cast<char>(std::toupper(static_cast<unsigned char>(*c)));
    line(fmt::format("#define MLPC_MODEL_{} {}_{}", upper, M, fn));
  }
  for (const char *c : {"BATCH", "CONTEXT", "VOCAB_SIZE", "PARAM_COUNT", "STEPS"})
    line(fmt::format("#define MLPC_MODEL_{} {}_{}", c, M, c));
  line(fmt::format("#define MLPC_MODEL_VOCAB {}_vocab", M));
  line(fmt::format("#define MLPC_MODEL_CHECKPOINT_DIMS {}_checkpoint_dims", M));
  line(fmt::format("#define MLPC_MODEL_CHECKPOINT_OVERRIDES {}_checkpoint_overrides", M));
  line(fmt::format("#define MLPC_MODEL_NAME \"{}\"", ctext::escape(M)));
  return h;
}

} // namespace

std::string trainingHeader(const TrainingModel &model, const TrainingLayout &layout,
                           const TrainingHeaderInfo &info) {
  const std::string &M = model.name;
  std::string h;
  auto line = [&](const std::string &s) { h += s + "\n"; };
  line(fmt::format("/* {}: the C interface of {}, generated by `mlpc compile --train`; do not",
                   commentSafe(info.headerFile), commentSafe(info.objectFile)));
  line(" * edit.");
  line(fmt::format(" *   model   {}", commentSafe(info.modelPath)));
  line(fmt::format(" *   weights {}", info.weightsPath.empty()
                                          ? "none: " + M + "_init runs the model's initialisers"
                                          : commentSafe(info.weightsPath)));
  line(fmt::format(" *   target  {}", commentSafe(info.target)));
  line(" *");
  line(fmt::format(" * {} trains the model where it runs: the training step (forward, fused",
                   commentSafe(info.objectFile)));
  line(" * backward, SGD update, BatchNorm running statistics) and inference with the");
  line(" * running statistics. It calls no library function and has no mutable global");
  line(" * state: everything lives in a caller-allocated state. Functions that take a");
  line(" * const state may run concurrently; the others need the state to themselves.");
  line(fmt::format(" * {}_forward and {}_calibrate use about {} KiB of stack.", M, M,
                   (layout.stackBytes + 1023) / 1024));
  line(" */");
  const std::string guard = ctext::guardMacro("MLPC_TRAIN_", M);
  h += ctext::headerOpening(guard, {"stddef.h", "stdint.h"});
  line("/* Rows per training step: X is int32_t[BATCH][CONTEXT], Y int32_t[BATCH]. */");
  line(fmt::format("#define {}_BATCH {}", M, layout.batch));
  line("/* Context length T: indices per row of X. */");
  line(fmt::format("#define {}_CONTEXT {}", M, layout.context));
  line("/* Vocabulary size V: logits per row; every index must be in [0, V). */");
  line(fmt::format("#define {}_VOCAB_SIZE {}", M, layout.vocab));
  line("/* Index -> character ('.' = 0 starts and ends a name). */");
  line(fmt::format("static const char {}_vocab[] = \"{}\";", M, ctext::escape(info.vocab)));
  line("/* Tensors in the state (parameters, then BatchNorm running statistics): what");
  line(" * a checkpoint holds. */");
  line(fmt::format("#define {}_PARAM_COUNT {}", M, layout.tensors.size()));
  line("/* The model's train block: its step count, and the learning-rate schedule");
  line(fmt::format(" * {}_train_step follows: {}. */", M, scheduleText(model)));
  line(fmt::format("#define {}_STEPS {}", M, model.steps));
  line(fmt::format("/* {}_state_bytes(), as a constant (e.g. for a static buffer). */", M));
  line(fmt::format("#define {}_STATE_BYTES {}", M, layout.stateBytes));
  line("/* Checkpoint metadata as `mlpc train` writes it: \"dims\" and \"overrides\" (the");
  line(" * --set values, JSON; empty without any), so mlpc rebuilds the same shapes. */");
  line(
      fmt::format("static const char {}_checkpoint_dims[] = \"{}\";", M, ctext::escape(info.dims)));
  line(fmt::format("static const char {}_checkpoint_overrides[] = \"{}\";", M,
                   ctext::escape(info.overrides)));
  line("");
  h += apiDeclarations(model);
  line("");
  h += aliases(M);
  line("");
  h += ctext::headerClosing(guard);
  return h;
}

} // namespace mlpc
