// The model as the server sees it: batches of token rows in, class
// probabilities out.
#ifndef ARGSERVE_MODEL_CLASSIFIER_H_
#define ARGSERVE_MODEL_CLASSIFIER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "argserve/model/metadata.h"

namespace argserve {

// A right-padded batch of token rows, row-major [rows, cols].
struct TokenBatch {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int64_t> tokens;
};

class Classifier {
 public:
  virtual ~Classifier() = default;

  virtual const ModelMetadata& metadata() const = 0;

  // Class probabilities (softmax of the logits), row-major [batch.rows,
  // classes]. Safe to call from several threads at once.
  virtual absl::StatusOr<std::vector<float>> Predict(
      const TokenBatch& batch) = 0;

  // Where the model runs, e.g. "cpu" or "cuda:0".
  virtual std::string device() const = 0;
};

struct TorchClassifierOptions {
  // "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
  std::string device = "auto";
  // Torch intra-op threads; 0 leaves Torch's default.
  int intra_op_threads = 0;
  // OpenBLAS threads for the matrix products Torch hands to it (process-wide);
  // 0 leaves OpenBLAS's default of one per core. OpenBLAS's own threads compete
  // with Torch's for the same cores: on a 2-core machine the default made the
  // forward 2x slower than 1 (bench/results).
  int blas_threads = 1;
  // "fp32", or "bf16": bfloat16 autocast for matrix products (fast on CPUs with
  // AMX or AVX512-BF16 and on recent GPUs); probabilities change by about 1e-3.
  std::string precision = "fp32";
};

// Loads a TorchScript artifact with its model.json. Errors are one line naming
// the file and the problem.
absl::StatusOr<std::unique_ptr<Classifier>> LoadTorchClassifier(
    const std::string& path, const TorchClassifierOptions& options);

}  // namespace argserve

#endif  // ARGSERVE_MODEL_CLASSIFIER_H_
