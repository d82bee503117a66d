#include "server/unary_call.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "server/window_merge.h"

namespace argserve {
namespace {

// A Classify call whose sequences are in the batcher.
class UnaryJob final : public BatchJob {
 public:
  UnaryJob(const CallEnvironment& environment,
           grpc::ServerUnaryReactor* reactor, v1::ClassifyResponse* response,
           std::vector<int> row_owner, uint32_t top_k, Clock::time_point start,
           Clock::time_point deadline)
      : environment_(environment),
        reactor_(reactor),
        response_(response),
        remaining_(row_owner.size()),
        windows_(std::move(row_owner), environment.model.nonarg_index),
        top_k_(top_k),
        start_(start),
        deadline_(deadline) {}

  void Cancel() { cancelled_.store(true); }
  bool IsCancelled() const override { return cancelled_.load(); }

  void OnResult(size_t row, const absl::Status& status,
                absl::Span<const float> probabilities) override {
    if (std::optional<WindowMerge::Done> done =
            windows_.Add(row, status, probabilities)) {
      if (done->status.ok()) {
        // Each sequence is written by exactly one worker; the elements were
        // created before submission.
        environment_.call_rule.Fill(
            done->probabilities, top_k_,
            *response_->mutable_predictions(static_cast<int>(done->sequence)));
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        if (error_.ok()) error_ = done->status;
      }
    }
    if (remaining_.fetch_sub(1) != 1) return;
    grpc::Status final_status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      final_status = ToGrpc(error_);
    }
    if (!final_status.ok()) response_->clear_predictions();
    grpc::StatusCode code = final_status.error_code();
    if (code == grpc::StatusCode::CANCELLED) code = CancellationCode(deadline_);
    environment_.metrics.OnRequest(
        kClassify, CodeName(code),
        static_cast<int>(response_->predictions_size()), SecondsSince(start_));
    reactor_->Finish(final_status);  // Last use of the call's objects.
  }

 private:
  const CallEnvironment& environment_;
  grpc::ServerUnaryReactor* const reactor_;
  v1::ClassifyResponse* const response_;
  std::atomic<size_t> remaining_;  // Rows.
  WindowMerge windows_;
  const uint32_t top_k_;
  const Clock::time_point start_;
  const Clock::time_point deadline_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  absl::Status error_;
};

class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit UnaryReactor(Metrics& metrics) : metrics_(metrics) {}
  void set_job(std::shared_ptr<UnaryJob> job) { job_ = std::move(job); }
  void OnCancel() override {
    if (job_) job_->Cancel();
    metrics_.OnCancelled(kClassify);
  }
  void OnDone() override { delete this; }

 private:
  Metrics& metrics_;
  std::shared_ptr<UnaryJob> job_;
};

}  // namespace

grpc::ServerUnaryReactor* StartClassify(const CallEnvironment& environment,
                                        grpc::CallbackServerContext* context,
                                        const v1::ClassifyRequest* request,
                                        v1::ClassifyResponse* response) {
  const auto start = Clock::now();
  auto* reactor = new UnaryReactor(environment.metrics);
  std::vector<std::vector<int64_t>> tokens;
  std::vector<int> row_owner;
  std::vector<v1::Prediction> predictions;
  grpc::Status status = environment.auth.Check(context);
  if (status.ok()) {
    status = environment.preparer.PrepareAll(
        request->sequences(), request->options().long_sequences(), tokens,
        row_owner, predictions);
  }
  if (!status.ok()) {
    environment.metrics.OnRequest(kClassify, CodeName(status.error_code()),
                                  request->sequences_size(),
                                  SecondsSince(start));
    reactor->Finish(status);
    return reactor;
  }
  response->set_model_name(environment.model.name);
  response->set_model_version(environment.model.version);
  response->mutable_predictions()->Reserve(
      static_cast<int>(predictions.size()));
  for (auto& prediction : predictions)
    *response->add_predictions() = std::move(prediction);
  const Clock::time_point deadline = DeadlineOf(context);
  auto job = std::make_shared<UnaryJob>(
      environment, reactor, response, std::move(row_owner),
      request->options().top_k(), start, deadline);
  reactor->set_job(job);
  absl::Status submitted = environment.batcher.Submit(
      job, std::move(tokens), deadline, context->peer());
  if (!submitted.ok()) {
    response->clear_predictions();
    environment.metrics.OnRequest(
        kClassify, absl::StatusCodeToString(submitted.code()),
        request->sequences_size(), SecondsSince(start));
    reactor->Finish(ToGrpc(submitted));
  }
  return reactor;
}

}  // namespace argserve
