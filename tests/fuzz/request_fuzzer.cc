// Fuzzes request validation: any ClassifyRequest bytes must be accepted (with
// tokens of the right shape) or refused with INVALID_ARGUMENT, never crash.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "server/service.h"
#include "tests/cpp/support/fake_classifier.h"

namespace {

struct Fixture {
  Fixture() {
    argserve::BatcherOptions options;
    options.num_workers = 1;
    metrics = *argserve::Metrics::Create("", "fuzz", "1", "cpu");
    batcher =
        std::make_unique<argserve::Batcher>(options, &model, metrics.get());
    argserve::ServiceOptions service_options;
    service_options.max_sequences_per_request = 1000;
    service = std::make_unique<argserve::ArgClassifierService>(
        service_options, &model, batcher.get(), metrics.get());
  }
  argserve::testing::FakeClassifier model{200};
  std::unique_ptr<argserve::Metrics> metrics;
  std::unique_ptr<argserve::Batcher> batcher;
  std::unique_ptr<argserve::ArgClassifierService> service;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* fixture = new Fixture();
  argserve::v1::ClassifyRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::vector<std::vector<int64_t>> tokens;
  std::vector<int> row_owner;
  std::vector<argserve::v1::Prediction> predictions;
  // The request's own long-sequence policy, windows included, is fuzzed too.
  const grpc::Status status = fixture->service->preparer().PrepareAll(
      request.sequences(), request.options().long_sequences(), tokens,
      row_owner, predictions);
  if (status.ok()) {
    if (predictions.size() != static_cast<size_t>(request.sequences_size()) ||
        row_owner.size() != tokens.size() || tokens.size() < predictions.size())
      __builtin_trap();
    std::vector<int> rows_of(predictions.size(), 0);
    for (size_t row = 0; row < tokens.size(); ++row) {
      // <cls> residues <eos>, never longer than the model allows.
      if (tokens[row].size() < 3 || tokens[row].size() > 202) __builtin_trap();
      if (row_owner[row] < 0 ||
          static_cast<size_t>(row_owner[row]) >= predictions.size())
        __builtin_trap();
      ++rows_of[row_owner[row]];
    }
    for (size_t i = 0; i < predictions.size(); ++i) {
      if (rows_of[i] == 0) __builtin_trap();
      if (predictions[i].id() != request.sequences(static_cast<int>(i)).id())
        __builtin_trap();
    }
  } else if (status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
    __builtin_trap();
  }
  return 0;
}
