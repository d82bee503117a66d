// Loads the tiny exported model (ctest fixture export_tiny_model) through the
// real TorchScript path.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

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

// Batches of 1-3 rows of random residues, one per width from 3 to 402 tokens;
// the last row of a multi-row batch is shorter, so padding varies too.
std::vector<TokenBatch> ManyShapes(const ModelMetadata& m) {
  Tokenizer tokenizer(m);
  std::mt19937 rng(7);
  const std::string amino_acids = "ACDEFGHIKLMNPQRSTVWY";
  std::uniform_int_distribution<size_t> pick(0, amino_acids.size() - 1);
  std::vector<TokenBatch> batches;
  for (int64_t cols = 3; cols <= 402; ++cols) {
    TokenBatch batch;
    batch.rows = 1 + cols % 3;
    batch.cols = cols;
    for (int64_t r = 0; r < batch.rows; ++r) {
      const int64_t shorter_by = r + 1 == batch.rows && r > 0 ? cols % 5 : 0;
      const int64_t length = std::max<int64_t>(1, cols - 2 - shorter_by);
      std::string residues;
      for (int64_t i = 0; i < length; ++i) residues += amino_acids[pick(rng)];
      TokenizedSequence row;
      EXPECT_TRUE(
          tokenizer.Tokenize(residues, LongSequencePolicy::kReject, row).ok());
      row.tokens.resize(cols, m.pad_token);
      batch.tokens.insert(batch.tokens.end(), row.tokens.begin(),
                          row.tokens.end());
    }
    batches.push_back(std::move(batch));
  }
  return batches;
}

// Runs every batch on each of `threads` threads at once, as the server's
// workers do, each thread starting at a different batch; then each batch alone,
// and expects the same probabilities.
void ExpectSideBySideMatchesAlone(Classifier& model, int threads) {
  const std::vector<TokenBatch> batches = ManyShapes(model.metadata());
  const size_t n = batches.size();
  std::vector<std::vector<absl::StatusOr<std::vector<float>>>> side_by_side(
      threads, std::vector<absl::StatusOr<std::vector<float>>>(
                   n, absl::UnknownError("not run")));
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (size_t i = 0; i < n; ++i) {
        const size_t b = (i + t * n / threads) % n;
        side_by_side[t][b] = model.Predict(batches[b]);
      }
    });
  }
  for (auto& worker : workers) worker.join();
  for (size_t b = 0; b < n; ++b) {
    auto alone = model.Predict(batches[b]);
    ASSERT_TRUE(alone.ok()) << alone.status();
    for (int t = 0; t < threads; ++t) {
      const auto& result = side_by_side[t][b];
      ASSERT_TRUE(result.ok())
          << "batch of width " << batches[b].cols << ": " << result.status();
      ASSERT_EQ(alone->size(), result->size());
      for (size_t i = 0; i < alone->size(); ++i)
        ASSERT_NEAR((*alone)[i], (*result)[i], 1e-6)
            << "batch of width " << batches[b].cols;
    }
  }
}

absl::StatusOr<std::unique_ptr<Classifier>> LoadBf16OnCpu() {
  TorchClassifierOptions options;
  options.device = "cpu";
  options.intra_op_threads = 1;
  options.precision = Precision::kBf16;
  return LoadTorchClassifier(ModelPath(), options);
}

// bf16 matrix products on CPU run in oneDNN, whose primitive cache failed when
// it evicted while another forward ran (400 shapes make over a thousand
// primitives, past its default capacity of 1,024).
TEST(TorchClassifier, Bf16ForwardsOfManyShapesSideBySideMatchAlone) {
  auto model = LoadBf16OnCpu();
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->preferred_column_multiple(), 32);
  EXPECT_TRUE((*model)->forwards_side_by_side());
  // Rounded up to the multiple, never past the model's longest input.
  const int64_t longest = (*model)->metadata().max_residues + 2;
  EXPECT_EQ(BatchColumns(**model, 37), 64);
  EXPECT_EQ(BatchColumns(**model, longest - 1), longest);
  EXPECT_EQ(BatchColumns(**model, longest), longest);
  ExpectSideBySideMatchesAlone(**model, 4);
}

// With room for only 256 primitives the 400 shapes would make the cache evict
// again and again, which fails in oneDNN 2.6 when another thread created the
// primitive; the cache must grow instead. ctest runs this test in a process of
// its own, as it changes the process-wide capacity.
TEST(TorchClassifierAlone, Bf16CacheGrowsInsteadOfEvicting) {
  using SetCapacity = int (*)(int);
  using GetCapacity = int (*)(int*);
  auto* set_capacity = reinterpret_cast<SetCapacity>(
      dlsym(RTLD_DEFAULT, "dnnl_set_primitive_cache_capacity"));
  auto* get_capacity = reinterpret_cast<GetCapacity>(
      dlsym(RTLD_DEFAULT, "dnnl_get_primitive_cache_capacity"));
  if (set_capacity == nullptr || get_capacity == nullptr)
    GTEST_SKIP() << "this LibTorch does not use oneDNN's primitive cache";
  auto model = LoadBf16OnCpu();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(set_capacity(256), 0);
  ExpectSideBySideMatchesAlone(**model, 4);
  int capacity = 0;
  ASSERT_EQ(get_capacity(&capacity), 0);
  EXPECT_GE(capacity, 2048);
}

TEST(TorchClassifier, Fp32RunsAnyWidth) {
  TorchClassifierOptions options;
  options.device = "cpu";
  auto model = LoadTorchClassifier(ModelPath(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->preferred_column_multiple(), 1);
  EXPECT_EQ(BatchColumns(**model, 37), 37);
}

// Freezing, optimize_for_inference, NoGradGuard and the legacy executor change
// how the forward runs, not what it computes.
TEST(TorchClassifier, GraphPassesAndGradModesKeepTheOutputs) {
  TorchClassifierOptions options;
  options.device = "cpu";
  options.intra_op_threads = 1;
  options.graph_passes = GraphPasses::kNone;
  auto reference = LoadTorchClassifier(ModelPath(), options);
  ASSERT_TRUE(reference.ok()) << reference.status();
  const std::vector<TokenBatch> batches = ManyShapes((*reference)->metadata());
  std::vector<TorchClassifierOptions> variants(4, options);
  variants[0].graph_passes = GraphPasses::kFreeze;
  variants[1].graph_passes = GraphPasses::kOptimize;
  variants[2].grad_mode = GradMode::kNoGrad;
  variants[3].executor = Executor::kLegacy;
  for (const TorchClassifierOptions& variant : variants) {
    auto model = LoadTorchClassifier(ModelPath(), variant);
    ASSERT_TRUE(model.ok()) << model.status();
    for (size_t b = 0; b < batches.size(); b += 37) {
      auto expected = (*reference)->Predict(batches[b]);
      auto got = (*model)->Predict(batches[b]);
      ASSERT_TRUE(expected.ok()) << expected.status();
      ASSERT_TRUE(got.ok())
          << NameOf(variant.graph_passes) << " " << NameOf(variant.grad_mode)
          << ": " << got.status();
      ASSERT_EQ(expected->size(), got->size());
      for (size_t i = 0; i < got->size(); ++i) {
        EXPECT_NEAR((*expected)[i], (*got)[i], 1e-5)
            << NameOf(variant.graph_passes) << " " << NameOf(variant.grad_mode)
            << " " << NameOf(variant.executor) << ", batch of width "
            << batches[b].cols;
      }
    }
  }
  options.executor = Executor::kProfiling;  // Process-wide: the default.
  ASSERT_TRUE(LoadTorchClassifier(ModelPath(), options).ok());
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
