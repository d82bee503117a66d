// A fake Classifier for tests of the batcher and the service: no Torch,
// deterministic outputs, and a gate that holds batches inside Predict() so
// tests can fill the queue.
#ifndef ARGSERVE_TESTS_CPP_FAKE_CLASSIFIER_H_
#define ARGSERVE_TESTS_CPP_FAKE_CLASSIFIER_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "argserve/model/classifier.h"
#include "tests/cpp/support/test_metadata.h"

namespace argserve::testing {

// The "probability" of class 0 is the row's token count
// (excluding padding) so each result can be traced back to its input. Records
// every batch it sees.
class FakeClassifier : public Classifier {
 public:
  explicit FakeClassifier(int max_residues = 4000,
                          const std::string& extra_json = "")
      : metadata_(
            *ParseModelMetadata(TestModelJson(max_residues, extra_json))) {}
  const ModelMetadata& metadata() const override { return metadata_; }
  std::string device() const override { return "cpu"; }
  int64_t preferred_column_multiple() const override { return column_multiple; }
  absl::StatusOr<std::vector<float>> Predict(const TokenBatch& batch) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      batches_.push_back(batch);
      gate_cv_.wait(lock, [&] { return open_; });
    }
    if (fail_) return absl::InternalError("model exploded");
    const int classes = static_cast<int>(metadata_.classes.size());
    std::vector<float> out(batch.rows * classes, 0.f);
    for (int64_t r = 0; r < batch.rows; ++r) {
      int64_t real = 0;
      for (int64_t c = 0; c < batch.cols; ++c)
        real += batch.tokens[r * batch.cols + c] != metadata_.pad_token;
      if (as_distribution) {
        // p(class 0) = n / (n + 1), p(last class) = 1 / (n + 1): sums to 1 and
        // still identifies the row.
        out[r * classes] = static_cast<float>(real) / (real + 1);
        out[r * classes + classes - 1] = 1.0f / (real + 1);
      } else {
        out[r * classes] = static_cast<float>(real);
      }
    }
    return out;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    gate_cv_.notify_all();
  }
  std::vector<TokenBatch> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  int64_t computed_rows() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t rows = 0;
    for (const auto& b : batches_) rows += b.rows;
    return rows;
  }
  bool fail_ = false;
  bool as_distribution = false;
  int64_t column_multiple = 1;

 private:
  ModelMetadata metadata_;
  std::mutex mu_;
  std::condition_variable gate_cv_;
  bool open_ = true;
  std::vector<TokenBatch> batches_;
};

}  // namespace argserve::testing

#endif  // ARGSERVE_TESTS_CPP_FAKE_CLASSIFIER_H_
