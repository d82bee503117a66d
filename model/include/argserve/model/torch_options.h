// How the TorchScript classifier runs: device, threads, precision, graph
// passes. Torch-free, so the server's settings can be parsed and tested without
// LibTorch.
#ifndef ARGSERVE_MODEL_TORCH_OPTIONS_H_
#define ARGSERVE_MODEL_TORCH_OPTIONS_H_

#include <string>

#include "absl/status/statusor.h"

namespace argserve {

// fp32, or bf16: bfloat16 autocast for matrix products (fast on CPUs with AMX
// or AVX512-BF16 and on recent GPUs; accuracy effect in bench/results).
enum class Precision { kFp32, kBf16 };
// TorchScript passes at load: none, freeze (parameters become constants;
// frozen modules keep only forward(), the one method Predict() runs), or
// optimize (freeze, then optimize_for_inference). Freezing can fail on models
// it does not support, so none is the default.
enum class GraphPasses { kNone, kFreeze, kOptimize };
// How autograd is switched off for forwards: c10::InferenceMode or
// torch::NoGradGuard.
enum class GradMode { kInference, kNoGrad };
// TorchScript executor, process-wide: profiling (LibTorch's default: graphs
// specialised to the shapes seen) or legacy.
enum class Executor { kProfiling, kLegacy };

// Parsing from and naming as the flag values ("bf16", "freeze", "no_grad",
// "legacy"); errors list the choices.
absl::StatusOr<Precision> ParsePrecision(const std::string& text);
absl::StatusOr<GraphPasses> ParseGraphPasses(const std::string& text);
absl::StatusOr<GradMode> ParseGradMode(const std::string& text);
absl::StatusOr<Executor> ParseExecutor(const std::string& text);
std::string NameOf(Precision value);
std::string NameOf(GraphPasses value);
std::string NameOf(GradMode value);
std::string NameOf(Executor value);

struct TorchClassifierOptions {
  // "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
  std::string device = "auto";
  // Torch intra-op threads; 0 leaves Torch's default.
  int intra_op_threads = 0;
  // OpenBLAS threads for the matrix products Torch hands to it (process-wide);
  // 0 leaves OpenBLAS's default of one per core, whose threads compete with
  // Torch's for the same cores (bench/results).
  int blas_threads = 1;
  Precision precision = Precision::kFp32;
  GraphPasses graph_passes = GraphPasses::kNone;
  GradMode grad_mode = GradMode::kInference;
  Executor executor = Executor::kProfiling;
};

}  // namespace argserve

#endif  // ARGSERVE_MODEL_TORCH_OPTIONS_H_
