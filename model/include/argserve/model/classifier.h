// The model as the server sees it: batches of token rows in, class
// probabilities out.
#ifndef ARGSERVE_MODEL_CLASSIFIER_H_
#define ARGSERVE_MODEL_CLASSIFIER_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "argserve/model/metadata.h"
#include "argserve/model/torch_options.h"

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

  // Batches whose column count is a multiple of this run best; callers pad
  // rows to it (bf16 on CPU: few distinct shapes let forwards run side by
  // side). 1: any width.
  virtual int64_t preferred_column_multiple() const { return 1; }

  // Whether Predict() calls from several threads run at the same time, rather
  // than one after another.
  virtual bool forwards_side_by_side() const { return true; }
};

// Columns of a batch whose longest row has `longest` tokens: rounded up to the
// classifier's preferred multiple, but never past the model's longest input.
inline int64_t BatchColumns(const Classifier& classifier, int64_t longest) {
  const int64_t multiple = classifier.preferred_column_multiple();
  const int64_t rounded = (longest + multiple - 1) / multiple * multiple;
  const int64_t model_max = classifier.metadata().max_residues + 2;
  return std::max(longest, std::min(rounded, model_max));
}

// Whether a model loaded with this device setting runs on a GPU: "auto" when
// CUDA is available, "cuda" and "cuda:N".
bool DeviceIsGpu(const std::string& device);

// Loads a TorchScript artifact with its model.json. Errors are one line naming
// the file and the problem.
absl::StatusOr<std::unique_ptr<Classifier>> LoadTorchClassifier(
    const std::string& path, const TorchClassifierOptions& options);

}  // namespace argserve

#endif  // ARGSERVE_MODEL_CLASSIFIER_H_
