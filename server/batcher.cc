#include "server/batcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace argserve {

Batcher::Batcher(BatcherOptions options, Classifier* classifier,
                 BatcherObserver* observer)
    : options_(std::move(options)),
      classifier_(classifier),
      observer_(observer),
      num_classes_(static_cast<int>(classifier->metadata().classes.size())),
      buckets_(options_.bucket_bounds.size() + 1) {
  for (int i = 0; i < std::max(1, options_.num_workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Batcher::~Batcher() { Stop(); }

void Batcher::FairQueue::Push(const std::string& caller, Item item) {
  std::deque<Item>& queue = by_caller_[caller];
  if (queue.empty()) turns_.push_back(caller);
  queue.push_back(std::move(item));
  ++size_;
}

const Batcher::Item& Batcher::FairQueue::Next() const {
  return by_caller_.at(turns_.front()).front();
}

Batcher::Item Batcher::FairQueue::TakeNext() {
  std::string caller = std::move(turns_.front());
  turns_.pop_front();
  auto it = by_caller_.find(caller);
  Item item = std::move(it->second.front());
  it->second.pop_front();
  if (it->second.empty()) {
    by_caller_.erase(it);
  } else {
    turns_.push_back(std::move(caller));
  }
  --size_;
  return item;
}

Clock::time_point Batcher::FairQueue::Oldest() const {
  Clock::time_point oldest = Clock::time_point::max();
  for (const auto& [caller, queue] : by_caller_)
    oldest = std::min(oldest, queue.front().enqueued);
  return oldest;
}

size_t Batcher::BucketOf(size_t length) const {
  const auto& bounds = options_.bucket_bounds;
  return std::lower_bound(bounds.begin(), bounds.end(),
                          static_cast<int>(length)) -
         bounds.begin();
}

absl::Status Batcher::Submit(const std::shared_ptr<BatchJob>& job,
                             std::vector<std::vector<int64_t>> sequences,
                             Clock::time_point deadline,
                             const std::string& caller) {
  const auto now = Clock::now();
  int64_t depth = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("server is shutting down");
    const auto count = static_cast<int64_t>(sequences.size());
    if (queued_ + count > options_.max_queue_size) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "server queue is full (", queued_, " of ", options_.max_queue_size,
          " sequences waiting); retry later"));
    }
    for (size_t i = 0; i < sequences.size(); ++i) {
      auto& bucket = buckets_[BucketOf(sequences[i].size())];
      bucket.Push(caller, Item{job, i, std::move(sequences[i]), now, deadline});
    }
    queued_ += count;
    depth = queued_;
  }
  if (observer_ != nullptr) observer_->OnQueueDepth(depth);
  cv_.notify_all();
  return absl::OkStatus();
}

int Batcher::DueBucket(Clock::time_point now,
                       Clock::time_point& wake_at) const {
  int due = -1;
  Clock::time_point due_oldest = Clock::time_point::max();
  wake_at = Clock::time_point::max();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const auto& bucket = buckets_[b];
    if (bucket.empty()) continue;
    const Clock::time_point oldest = bucket.Oldest();
    const int64_t row_tokens =
        b < options_.bucket_bounds.size()
            ? options_.bucket_bounds[b]
            : static_cast<int64_t>(bucket.Next().tokens.size());
    const auto rows = static_cast<int64_t>(bucket.size());
    const bool full = rows >= options_.max_batch_size ||
                      rows * row_tokens >= options_.max_batch_tokens;
    const Clock::time_point release_at = oldest + options_.max_queue_delay;
    if (full || stopping_ || release_at <= now) {
      // Among due buckets, serve the one that has waited longest.
      if (oldest < due_oldest) {
        due = static_cast<int>(b);
        due_oldest = oldest;
      }
    } else {
      wake_at = std::min(wake_at, release_at);
    }
  }
  return due;
}

Batcher::Batch Batcher::TakeBatch(int bucket_index) {
  auto& bucket = buckets_[bucket_index];
  Batch batch;
  const auto now = Clock::now();
  while (!bucket.empty() &&
         static_cast<int>(batch.items.size()) < options_.max_batch_size) {
    const Item& item = bucket.Next();
    if (item.job->IsCancelled() || item.deadline <= now) {
      batch.dropped.push_back(bucket.TakeNext());
      continue;
    }
    const int64_t longest = std::max<int64_t>(
        batch.longest, static_cast<int64_t>(item.tokens.size()));
    const auto rows = static_cast<int64_t>(batch.items.size()) + 1;
    if (!batch.items.empty() &&
        rows * BatchColumns(*classifier_, longest) > options_.max_batch_tokens)
      break;
    batch.longest = longest;
    batch.items.push_back(bucket.TakeNext());
  }
  queued_ -= static_cast<int64_t>(batch.items.size() + batch.dropped.size());
  return batch;
}

void Batcher::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    Clock::time_point wake_at;
    const int due = DueBucket(Clock::now(), wake_at);
    if (due < 0) {
      if (stopping_ && queued_ == 0) return;
      if (wake_at == Clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, wake_at);
      }
      continue;
    }
    Batch batch = TakeBatch(due);
    const int64_t depth = queued_;
    lock.unlock();
    // Another bucket may be due too; let an idle worker look while this one
    // computes.
    cv_.notify_one();
    if (observer_ != nullptr) observer_->OnQueueDepth(depth);
    RunBatch(batch);
    if (options_.after_batch) options_.after_batch();
    lock.lock();
  }
}

void Batcher::RunBatch(Batch& batch) {
  const auto now = Clock::now();
  int cancelled = 0;
  int expired = 0;
  for (Item& item : batch.dropped) {
    // A job can be both; cancellation is what the caller did, so it wins.
    if (item.job->IsCancelled()) {
      ++cancelled;
      item.job->OnResult(
          item.index, absl::CancelledError("call cancelled before inference"),
          {});
    } else {
      ++expired;
      item.job->OnResult(
          item.index,
          absl::DeadlineExceededError("deadline passed while queued"), {});
    }
  }
  if (observer_ != nullptr) {
    if (cancelled > 0)
      observer_->OnDropped(absl::CancelledError(""), cancelled);
    if (expired > 0)
      observer_->OnDropped(absl::DeadlineExceededError(""), expired);
  }
  if (batch.items.empty()) return;

  // Shortest first keeps rows of similar length adjacent; padding itself is set
  // by the longest row.
  std::sort(batch.items.begin(), batch.items.end(),
            [](const Item& a, const Item& b) {
              return a.tokens.size() < b.tokens.size();
            });
  TokenBatch tokens;
  tokens.rows = static_cast<int64_t>(batch.items.size());
  tokens.cols = BatchColumns(*classifier_, batch.longest);
  tokens.tokens.assign(tokens.rows * tokens.cols,
                       classifier_->metadata().pad_token);
  BatchStats stats;
  stats.rows = static_cast<int>(tokens.rows);
  stats.computed_tokens = tokens.rows * tokens.cols;
  for (int64_t r = 0; r < tokens.rows; ++r) {
    const auto& row = batch.items[r].tokens;
    std::copy(row.begin(), row.end(), tokens.tokens.begin() + r * tokens.cols);
    stats.real_tokens += static_cast<int64_t>(row.size());
    stats.queue_wait_seconds.push_back(
        std::chrono::duration<double>(now - batch.items[r].enqueued).count());
  }

  const auto start = Clock::now();
  absl::StatusOr<std::vector<float>> probabilities =
      classifier_->Predict(tokens);
  stats.inference_seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  stats.ok = probabilities.ok();
  if (observer_ != nullptr) observer_->OnBatch(stats);

  for (int64_t r = 0; r < tokens.rows; ++r) {
    Item& item = batch.items[r];
    if (probabilities.ok()) {
      item.job->OnResult(
          item.index, absl::OkStatus(),
          absl::MakeConstSpan(probabilities->data() + r * num_classes_,
                              num_classes_));
    } else {
      item.job->OnResult(item.index, probabilities.status(), {});
    }
  }
}

void Batcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

int64_t Batcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_;
}

}  // namespace argserve
