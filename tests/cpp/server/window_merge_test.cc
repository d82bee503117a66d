#include "server/window_merge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace argserve {
namespace {

using ::testing::ElementsAre;

TEST(WindowMerge, OneRowSequencesAreAnsweredAtOnce) {
  WindowMerge merge({0, 1}, /*nonarg_index=*/1);
  auto first = merge.Add(1, absl::OkStatus(), {0.2f, 0.8f});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->sequence, 1u);
  EXPECT_THAT(first->probabilities, ElementsAre(0.2f, 0.8f));
}

TEST(WindowMerge, TheWindowWithTheHighestArgProbabilityAnswers) {
  // Sequence 0 has three windows (rows 0, 2, 3), sequence 1 one (row 1).
  WindowMerge merge({0, 1, 0, 0}, /*nonarg_index=*/2);
  EXPECT_FALSE(merge.Add(0, absl::OkStatus(), {0.1f, 0.1f, 0.8f}));
  EXPECT_TRUE(merge.Add(1, absl::OkStatus(), {0.5f, 0.0f, 0.5f}));
  EXPECT_FALSE(merge.Add(3, absl::OkStatus(), {0.0f, 0.7f, 0.3f}));
  auto done = merge.Add(2, absl::OkStatus(), {0.4f, 0.1f, 0.5f});
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->sequence, 0u);
  EXPECT_TRUE(done->status.ok());
  EXPECT_THAT(done->probabilities, ElementsAre(0.0f, 0.7f, 0.3f));
}

TEST(WindowMerge, AFailedWindowFailsItsSequence) {
  WindowMerge merge({0, 0}, 1);
  EXPECT_FALSE(merge.Add(0, absl::DeadlineExceededError("late"), {}));
  auto done = merge.Add(1, absl::OkStatus(), {0.9f, 0.1f});
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(WindowMerge, RowsFromManyThreadsAnswerEachSequenceOnce) {
  std::vector<int> owner;
  for (int s = 0; s < 100; ++s)
    for (int w = 0; w < 4; ++w) owner.push_back(s);
  WindowMerge merge(owner, 1);
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t row = t; row < owner.size(); row += 4) {
        if (merge.Add(row, absl::OkStatus(), {0.5f, 0.5f})) ++answered;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), 100);
}

}  // namespace
}  // namespace argserve
