#include "server/batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include "tests/cpp/support/fake_classifier.h"
#include "tests/cpp/support/test_metadata.h"

namespace argserve {
namespace {

using namespace std::chrono_literals;

class RecordingJob : public BatchJob {
 public:
  explicit RecordingJob(size_t n) : results_(n, -1), statuses_(n) {}
  bool IsCancelled() const override { return cancelled_.load(); }
  void OnResult(size_t index, const absl::Status& status,
                absl::Span<const float> p) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_[index];
    statuses_[index] = status;
    if (status.ok()) results_[index] = p[0];
    ++done_;
    cv_.notify_all();
  }
  bool WaitAll(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout,
                        [&] { return done_ == results_.size(); });
  }
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<float> results_;
  std::vector<absl::Status> statuses_;
  std::map<size_t, int> calls_;
  size_t done_ = 0;
};

std::vector<int64_t> Row(int residues) {
  std::vector<int64_t> row(residues + 2, 5);
  row.front() = 0;
  row.back() = 2;
  return row;
}

TEST(Batcher, EveryResultReturnsToItsItemExactlyOnce) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 8;
  options.num_workers = 2;
  Batcher batcher(options, &model, nullptr);
  std::vector<std::shared_ptr<RecordingJob>> jobs;
  for (int j = 0; j < 20; ++j) {
    std::vector<std::vector<int64_t>> rows;
    rows.reserve(13);
    for (int i = 0; i < 13; ++i)
      rows.push_back(Row(1 + (j * 37 + i * 11) % 300));
    auto job = std::make_shared<RecordingJob>(rows.size());
    jobs.push_back(job);
    ASSERT_TRUE(batcher.Submit(job, rows).ok());
  }
  for (int j = 0; j < 20; ++j) {
    ASSERT_TRUE(jobs[j]->WaitAll());
    for (int i = 0; i < 13; ++i) {
      EXPECT_TRUE(jobs[j]->statuses_[i].ok());
      EXPECT_EQ(jobs[j]->calls_[i], 1);
      // The fake model's output is the row's real token count: residues + 2.
      EXPECT_EQ(jobs[j]->results_[i], 1 + (j * 37 + i * 11) % 300 + 2)
          << "job " << j << " item " << i;
    }
  }
}

TEST(Batcher, BatchesRespectSizeAndTokenLimits) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 16;
  options.max_batch_tokens = 2000;
  options.max_queue_delay = 50ms;
  model.Close();  // Let the queue fill so that full batches form.
  Batcher batcher(options, &model, nullptr);
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(501);
  for (int i = 0; i < 500; ++i) rows.push_back(Row(20 + (i * 7919) % 700));
  rows.push_back(
      Row(3000));  // Alone above the token budget: must still run, alone.
  auto job = std::make_shared<RecordingJob>(rows.size());
  ASSERT_TRUE(batcher.Submit(job, rows).ok());
  model.Open();
  ASSERT_TRUE(job->WaitAll());
  int64_t total_rows = 0;
  bool saw_long_alone = false;
  for (const TokenBatch& b : model.batches()) {
    EXPECT_LE(b.rows, 16);
    if (b.cols > 2000) {
      EXPECT_EQ(b.rows, 1);
      saw_long_alone = true;
    } else {
      EXPECT_LE(b.rows * b.cols, 2000);
    }
    total_rows += b.rows;
  }
  EXPECT_TRUE(saw_long_alone);
  EXPECT_EQ(total_rows, 501);
}

TEST(Batcher, AfterBatchHookRunsOnceAfterEveryBatch) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 4;
  options.num_workers = 2;
  std::atomic<int> hook_calls{0};
  options.after_batch = [&] { hook_calls.fetch_add(1); };
  Batcher batcher(options, &model, nullptr);
  std::vector<std::vector<int64_t>> rows;
  for (int i = 0; i < 37; ++i) rows.push_back(Row(10 + i));
  auto job = std::make_shared<RecordingJob>(rows.size());
  ASSERT_TRUE(batcher.Submit(job, rows).ok());
  ASSERT_TRUE(job->WaitAll());
  batcher.Stop();  // Joins the workers: every hook call has returned.
  EXPECT_GE(model.batches().size(), 10u);
  EXPECT_EQ(hook_calls.load(), static_cast<int>(model.batches().size()));
}

// A light caller's sequences do not wait behind a heavy caller's backlog: the
// two take turns within a bucket.
TEST(Batcher, CallersTakeTurns) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 8;
  options.num_workers = 1;
  options.max_queue_delay = 0ms;
  Batcher batcher(options, &model, nullptr);
  model.Close();
  std::vector<std::vector<int64_t>> heavy_rows(800, Row(50));
  auto heavy = std::make_shared<RecordingJob>(heavy_rows.size());
  ASSERT_TRUE(
      batcher.Submit(heavy, heavy_rows, Clock::time_point::max(), "heavy")
          .ok());
  // One residue longer than the heavy rows, in the same bucket: a batch holds
  // a light row exactly when its width is the light row's.
  auto light = std::make_shared<RecordingJob>(2);
  ASSERT_TRUE(
      batcher
          .Submit(light, {Row(51), Row(51)}, Clock::time_point::max(), "light")
          .ok());
  model.Open();
  ASSERT_TRUE(light->WaitAll());
  ASSERT_TRUE(heavy->WaitAll());
  const std::vector<TokenBatch> batches = model.batches();
  size_t first_light = batches.size();
  int64_t rows = 0;
  for (size_t b = 0; b < batches.size(); ++b) {
    if (batches[b].cols == 53 && first_light == batches.size()) first_light = b;
    rows += batches[b].rows;
  }
  // The batch taken before the light job arrived, then the light job's.
  EXPECT_LE(first_light, 1u);
  EXPECT_EQ(rows, 802);
}

// A classifier that prefers column counts of a multiple gets them, the token
// budget counts the padded columns, and the extra padding leaves results alone.
TEST(Batcher, ColumnsAreRoundedToTheClassifiersMultiple) {
  testing::FakeClassifier model(/*max_residues=*/1000);
  model.column_multiple = 32;
  BatcherOptions options;
  options.max_batch_size = 16;
  options.max_batch_tokens = 1024;
  options.max_queue_delay = 50ms;
  model.Close();
  Batcher batcher(options, &model, nullptr);
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(301);
  for (int i = 0; i < 300; ++i) rows.push_back(Row(10 + (i * 7919) % 500));
  rows.push_back(Row(999));  // 1,001 tokens, one short of the model's longest.
  auto job = std::make_shared<RecordingJob>(rows.size());
  ASSERT_TRUE(batcher.Submit(job, rows).ok());
  model.Open();
  ASSERT_TRUE(job->WaitAll());
  bool saw_longest = false;
  for (const TokenBatch& b : model.batches()) {
    if (b.cols == 1002) {
      // 1,024 would pass the model's longest input (1,000 residues + 2).
      saw_longest = true;
      continue;
    }
    EXPECT_EQ(b.cols % 32, 0) << "batch of " << b.rows << " x " << b.cols;
    EXPECT_LE(b.rows * b.cols, 1024)
        << "batch of " << b.rows << " x " << b.cols;
  }
  EXPECT_TRUE(saw_longest);
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(job->results_[i], static_cast<float>(rows[i].size())) << i;
}

TEST(Batcher, BucketingKeepsPaddingLow) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 32;
  options.max_batch_tokens = 1 << 20;
  model.Close();
  Batcher batcher(options, &model, nullptr);
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(2000);
  for (int i = 0; i < 2000; ++i) rows.push_back(Row(30 + (i * 7919) % 900));
  auto job = std::make_shared<RecordingJob>(rows.size());
  ASSERT_TRUE(batcher.Submit(job, rows).ok());
  model.Open();
  ASSERT_TRUE(job->WaitAll());
  int64_t real = 0;
  int64_t computed = 0;
  for (const TokenBatch& b : model.batches()) {
    computed += b.rows * b.cols;
    for (int64_t t : b.tokens) real += t != 1;
  }
  // Buckets are at most 25% wide, so padding stays well under that on average.
  EXPECT_GT(static_cast<double>(real) / computed, 0.85);
}

TEST(Batcher, PartialBatchLeavesAfterTheQueueDelay) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 64;
  options.max_queue_delay = 30ms;
  Batcher batcher(options, &model, nullptr);
  auto job = std::make_shared<RecordingJob>(3);
  const auto start = Clock::now();
  ASSERT_TRUE(batcher.Submit(job, {Row(50), Row(51), Row(52)}).ok());
  ASSERT_TRUE(job->WaitAll());
  const auto waited = Clock::now() - start;
  // Not before the delay (the batch was not full), and not much after it.
  EXPECT_GE(waited, 30ms);
  EXPECT_LT(waited, 1000ms);
  ASSERT_EQ(model.batches().size(), 1u);
  EXPECT_EQ(model.batches()[0].rows, 3);
}

TEST(Batcher, FullBatchDoesNotWaitForTheDelay) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 4;
  options.max_queue_delay = 10s;
  Batcher batcher(options, &model, nullptr);
  auto job = std::make_shared<RecordingJob>(4);
  ASSERT_TRUE(batcher.Submit(job, {Row(50), Row(51), Row(52), Row(53)}).ok());
  EXPECT_TRUE(job->WaitAll(5s));
}

TEST(Batcher, OverloadIsRejectedWholeWithResourceExhausted) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_queue_size = 10;
  options.max_batch_size = 1;
  model.Close();
  Batcher batcher(options, &model, nullptr);
  auto first = std::make_shared<RecordingJob>(1);
  ASSERT_TRUE(batcher.Submit(first, {Row(10)}).ok());
  // Wait until the worker holds the first item, so the queue count is known.
  while (model.batches().empty()) std::this_thread::sleep_for(1ms);
  auto fits = std::make_shared<RecordingJob>(10);
  ASSERT_TRUE(
      batcher.Submit(fits, std::vector<std::vector<int64_t>>(10, Row(10)))
          .ok());
  auto rejected = std::make_shared<RecordingJob>(1);
  absl::Status status = batcher.Submit(rejected, {Row(10)});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("queue is full"));
  model.Open();
  EXPECT_TRUE(first->WaitAll());
  EXPECT_TRUE(fits->WaitAll());
  EXPECT_EQ(
      rejected->done_,
      0u);  // A rejected job gets no callbacks: the caller was told at once.
}

TEST(Batcher, CancelledWorkIsNotComputed) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 1;
  model.Close();
  Batcher batcher(options, &model, nullptr);
  auto blocker = std::make_shared<RecordingJob>(1);
  ASSERT_TRUE(batcher.Submit(blocker, {Row(10)}).ok());
  while (model.batches().empty()) std::this_thread::sleep_for(1ms);
  auto cancelled = std::make_shared<RecordingJob>(5);
  ASSERT_TRUE(
      batcher.Submit(cancelled, std::vector<std::vector<int64_t>>(5, Row(20)))
          .ok());
  cancelled->cancelled_ = true;
  model.Open();
  ASSERT_TRUE(cancelled->WaitAll());
  for (const auto& s : cancelled->statuses_)
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(model.computed_rows(), 1);  // Only the blocker ran.
}

TEST(Batcher, PassedDeadlinesAreNotComputed) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_batch_size = 1;
  model.Close();
  Batcher batcher(options, &model, nullptr);
  auto blocker = std::make_shared<RecordingJob>(1);
  ASSERT_TRUE(batcher.Submit(blocker, {Row(10)}).ok());
  while (model.batches().empty()) std::this_thread::sleep_for(1ms);
  auto late = std::make_shared<RecordingJob>(2);
  ASSERT_TRUE(
      batcher.Submit(late, {Row(20), Row(21)}, Clock::now() + 20ms).ok());
  std::this_thread::sleep_for(60ms);
  model.Open();
  ASSERT_TRUE(late->WaitAll());
  for (const auto& s : late->statuses_)
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(model.computed_rows(), 1);
}

TEST(Batcher, ModelFailureReachesEveryItem) {
  testing::FakeClassifier model;
  model.fail_ = true;
  Batcher batcher(BatcherOptions(), &model, nullptr);
  auto job = std::make_shared<RecordingJob>(3);
  ASSERT_TRUE(batcher.Submit(job, {Row(5), Row(6), Row(7)}).ok());
  ASSERT_TRUE(job->WaitAll());
  for (const auto& s : job->statuses_)
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
}

TEST(Batcher, StopRunsQueuedWorkThenRejectsNewWork) {
  testing::FakeClassifier model;
  BatcherOptions options;
  options.max_queue_delay = 10s;  // Only Stop() releases this partial batch.
  Batcher batcher(options, &model, nullptr);
  auto job = std::make_shared<RecordingJob>(2);
  ASSERT_TRUE(batcher.Submit(job, {Row(5), Row(6)}).ok());
  batcher.Stop();
  EXPECT_EQ(job->done_, 2u);
  EXPECT_TRUE(job->statuses_[0].ok());
  auto after = std::make_shared<RecordingJob>(1);
  EXPECT_EQ(batcher.Submit(after, {Row(5)}).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace argserve
