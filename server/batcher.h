// Dynamic batching: sequences from all requests are merged into length-bucketed
// batches.
//
// Every sequence is a work item. Items wait in buckets by token length; a
// bucket is released as a batch when it holds enough rows or padded tokens to
// fill one, or when its oldest item has waited max_queue_delay. The queue is
// bounded: a job that does not fit is rejected whole, at once, with
// RESOURCE_EXHAUSTED. Items of cancelled jobs or passed deadlines are dropped
// before inference.
#ifndef ARGSERVE_SERVER_BATCHER_H_
#define ARGSERVE_SERVER_BATCHER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "argserve/model/classifier.h"

namespace argserve {

using Clock = std::chrono::steady_clock;

struct BatcherOptions {
  // Most sequences in one batch.
  int max_batch_size = 64;
  // Most padded tokens (rows x columns, <cls>/<eos> included) in one batch;
  // columns are the longest row rounded up to the classifier's preferred
  // multiple. A single sequence longer than this still runs, alone.
  int64_t max_batch_tokens = 16384;
  // Longest time the oldest waiting sequence of a bucket waits for its batch to
  // fill.
  std::chrono::microseconds max_queue_delay{2000};
  // Most sequences waiting for a batch, over all requests; beyond it jobs are
  // rejected.
  int64_t max_queue_size = 100000;
  // Model worker threads; each runs one batch at a time.
  int num_workers = 1;
  // Run by a worker after each batch, e.g. to hand memory freed by the model
  // back to the OS (PeriodicMemoryRelease); may be empty.
  std::function<void()> after_batch;
  // Upper bounds (in tokens) of the length buckets, ascending; longer items
  // share a last bucket. Neighbouring bounds differ by at most 25%, which
  // bounds padding within a bucket.
  std::vector<int> bucket_bounds = {
      16,  24,  32,   40,   48,   56,   64,   80,   96,   112,
      128, 160, 192,  224,  256,  320,  384,  448,  512,  640,
      768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 4096};
};

// A unit of caller work: several sequences whose results go back to one place.
class BatchJob {
 public:
  virtual ~BatchJob() = default;
  // True once the caller no longer wants results (cancelled or gone).
  virtual bool IsCancelled() const = 0;
  // Called exactly once per submitted item, from a worker thread, with the
  // item's class probabilities or the reason it was not computed (CANCELLED,
  // DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE).
  virtual void OnResult(size_t index, const absl::Status& status,
                        absl::Span<const float> probabilities) = 0;
};

// Per-batch figures, for metrics.
struct BatchStats {
  int rows = 0;
  int64_t real_tokens = 0;                 // Sum of row lengths.
  int64_t computed_tokens = 0;             // rows x columns, padding included.
  std::vector<double> queue_wait_seconds;  // One per row.
  double inference_seconds = 0;
  bool ok = true;
};

class BatcherObserver {
 public:
  virtual ~BatcherObserver() = default;
  virtual void OnBatch(const BatchStats& stats) = 0;
  virtual void OnQueueDepth(int64_t depth) = 0;
  virtual void OnDropped(const absl::Status& reason, int count) = 0;
};

class Batcher {
 public:
  // The classifier and observer must outlive the batcher; the observer may be
  // null.
  Batcher(BatcherOptions options, Classifier* classifier,
          BatcherObserver* observer);
  ~Batcher();

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues all sequences of a job (token rows as produced by Tokenizer), or
  // none: RESOURCE_EXHAUSTED when they do not fit in the queue, UNAVAILABLE
  // after Stop(). An item whose deadline passes before its batch runs gets
  // DEADLINE_EXCEEDED. Within a length bucket, callers (e.g. client
  // connections) take turns, so one caller's backlog does not hold back
  // another's sequences; jobs of one caller are served in order.
  absl::Status Submit(const std::shared_ptr<BatchJob>& job,
                      std::vector<std::vector<int64_t>> sequences,
                      Clock::time_point deadline = Clock::time_point::max(),
                      const std::string& caller = "");

  // Stops accepting work, runs everything already queued, and joins the
  // workers.
  void Stop();

  int64_t queue_depth() const;
  const BatcherOptions& options() const { return options_; }

 private:
  struct Item {
    std::shared_ptr<BatchJob> job;
    size_t index = 0;
    std::vector<int64_t> tokens;
    Clock::time_point enqueued;
    Clock::time_point deadline;
  };
  // The items of one length bucket: a queue per caller, callers taken in
  // turn, one item at a time.
  class FairQueue {
   public:
    void Push(const std::string& caller, Item item);
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    // The next item to be taken; the queue must not be empty.
    const Item& Next() const;
    Item TakeNext();
    // When the longest-waiting item was queued; the queue must not be empty.
    Clock::time_point Oldest() const;

   private:
    std::unordered_map<std::string, std::deque<Item>> by_caller_;
    std::deque<std::string> turns_;  // Callers with items; front is next.
    size_t size_ = 0;
  };
  struct Batch {
    std::vector<Item> items;
    std::vector<Item>
        dropped;  // Cancelled or past their deadline: answered, not computed.
    int64_t longest = 0;
  };

  size_t BucketOf(size_t length) const;
  // Picks the bucket to release now, or -1 and the time at which one becomes
  // due.
  int DueBucket(Clock::time_point now, Clock::time_point& wake_at) const;
  Batch TakeBatch(int bucket);
  void WorkerLoop();
  void RunBatch(Batch& batch);

  const BatcherOptions options_;
  Classifier* const classifier_;
  BatcherObserver* const observer_;
  const int num_classes_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<FairQueue> buckets_;  // Guarded by mu_.
  int64_t queued_ = 0;              // Guarded by mu_.
  bool stopping_ = false;           // Guarded by mu_.
  std::vector<std::thread> workers_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_BATCHER_H_
