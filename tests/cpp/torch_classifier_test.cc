// Loads the tiny exported model (ctest fixture export_tiny_model) through the
// real TorchScript path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "argserve/model/classifier.h"
#include "argserve/model/tokenizer.h"

namespace argserve {
namespace {

using ::testing::HasSubstr;

std::string ModelPath() {
  // Read before the test starts any thread.
  const char* path =
      std::getenv("ARGSERVE_TEST_MODEL");  // NOLINT(concurrency-mt-unsafe)
  return path == nullptr ? "" : path;
}

TEST(TorchClassifier, LoadsMetadataAndPredictsDistributions) {
  TorchClassifierOptions options;
  options.device = "cpu";
  options.intra_op_threads = 1;
  auto model = LoadTorchClassifier(ModelPath(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelMetadata& m = (*model)->metadata();
  EXPECT_EQ(m.name, "tiny-random");
  EXPECT_EQ(m.classes.size(), 4u);
  EXPECT_EQ((*model)->device(), "cpu");

  Tokenizer tokenizer(m);
  TokenizedSequence a;
  TokenizedSequence b;
  ASSERT_TRUE(
      tokenizer.Tokenize("MKLVAAGGSTRE", LongSequencePolicy::kReject, a).ok());
  ASSERT_TRUE(
      tokenizer.Tokenize("MSTNPKPQ", LongSequencePolicy::kReject, b).ok());
  TokenBatch batch;
  batch.rows = 2;
  batch.cols = static_cast<int64_t>(a.tokens.size());
  batch.tokens = a.tokens;
  batch.tokens.insert(batch.tokens.end(), b.tokens.begin(), b.tokens.end());
  batch.tokens.resize(batch.rows * batch.cols, m.pad_token);
  auto probabilities = (*model)->Predict(batch);
  ASSERT_TRUE(probabilities.ok()) << probabilities.status();
  ASSERT_EQ(probabilities->size(), 8u);
  for (int r = 0; r < 2; ++r) {
    double sum = 0;
    for (int c = 0; c < 4; ++c) sum += (*probabilities)[r * 4 + c];
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  // Padding must not change a row's result: b alone equals b padded in the
  // batch.
  TokenBatch alone{1, static_cast<int64_t>(b.tokens.size()), b.tokens};
  auto single = (*model)->Predict(alone);
  ASSERT_TRUE(single.ok());
  for (int c = 0; c < 4; ++c)
    EXPECT_NEAR((*single)[c], (*probabilities)[4 + c], 1e-5);
}

TEST(TorchClassifier, MissingFileIsNamed) {
  auto model = LoadTorchClassifier("/nonexistent/model.pt",
                                   TorchClassifierOptions{"cpu", 1});
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("model file '/nonexistent/model.pt'"));
}

TEST(TorchClassifier, CorruptFileIsNamedInOneLine) {
  const std::string path = ::testing::TempDir() + "/corrupt.pt";
  std::ofstream(path) << "this is not a zip archive";
  auto model = LoadTorchClassifier(path, TorchClassifierOptions{"cpu", 1});
  ASSERT_FALSE(model.ok());
  const std::string message(model.status().message());
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("not a TorchScript archive"));
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(TorchClassifier, CudaWithoutCudaIsAClearError) {
  auto model =
      LoadTorchClassifier(ModelPath(), TorchClassifierOptions{"cuda", 1});
  if (model.ok()) GTEST_SKIP() << "this machine has CUDA";
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("no CUDA device"));
}

}  // namespace
}  // namespace argserve
