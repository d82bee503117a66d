#include "client/classify.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "client/connection.h"

namespace argserve {

Progress::Progress(bool enabled, size_t total)
    : enabled_(enabled),
      total_(total),
      start_(std::chrono::steady_clock::now()) {}

void Progress::Update(size_t done, bool final) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!final && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? done / seconds : 0;
  if (total_ == 0) {
    std::fprintf(stderr, "\r%zu sequences  %.1f seq/s ", done, rate);
    if (final) std::fprintf(stderr, "\n");
    std::fflush(stderr);
    return;
  }
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  const int width = 30;
  const int filled =
      total_ == 0 ? width : static_cast<int>(width * done / total_);
  std::fprintf(stderr, "\r[%s%s] %zu/%zu sequences  %.1f seq/s  ETA %.0fs ",
               std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), done, total_, rate,
               eta);
  if (final) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

OrderedSink::OrderedSink(ResultWriter& writer,
                         const std::vector<FastaRecord>& records,
                         Progress& progress, size_t done_before)
    : writer_(writer),
      records_(records),
      results_(records.size()),
      progress_(progress),
      done_before_(done_before) {}

void OrderedSink::Put(size_t index, v1::Prediction prediction) {
  std::lock_guard<std::mutex> lock(mu_);
  if (prediction.has_status() && prediction.status().code() != 0) ++failed_;
  results_[index] = std::move(prediction);
  while (next_ < results_.size() && results_[next_]) {
    writer_.Write(*results_[next_], records_[next_]);
    results_[next_].reset();  // Written: free it.
    ++next_;
  }
  progress_.Update(done_before_ + next_);
}

size_t OrderedSink::written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_;
}

size_t OrderedSink::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

v1::LongSequencePolicy RequestPolicy(LongSequences long_sequences) {
  switch (long_sequences) {
    case LongSequences::kReject:
      return v1::LONG_SEQUENCES_REJECT;
    case LongSequences::kTruncate:
      return v1::LONG_SEQUENCES_TRUNCATE;
    case LongSequences::kWindow:
      return v1::LONG_SEQUENCES_WINDOW;
    default:
      return v1::LONG_SEQUENCES_SERVER_DEFAULT;
  }
}

grpc::Status ClassifyUnary(const ClientOptions& o,
                           v1::ArgClassifier::StubInterface& stub,
                           const std::vector<FastaRecord>& records,
                           const std::vector<size_t>& send, OrderedSink& sink) {
  const size_t batches = (send.size() + o.batch_size - 1) / o.batch_size;
  std::atomic<size_t> next_batch{0};
  std::mutex error_mu;
  grpc::Status first_error;
  std::atomic<bool> failed{false};
  auto worker = [&] {
    while (!failed.load()) {
      const size_t b = next_batch.fetch_add(1);
      if (b >= batches) return;
      v1::ClassifyRequest request;
      request.mutable_options()->set_top_k(o.top_k);
      request.mutable_options()->set_long_sequences(
          RequestPolicy(o.long_sequences));
      const size_t begin = b * o.batch_size;
      const size_t end = std::min(send.size(), begin + o.batch_size);
      for (size_t i = begin; i < end; ++i) {
        auto* sequence = request.add_sequences();
        sequence->set_id(records[send[i]].id);
        sequence->set_residues(records[send[i]].residues);
      }
      v1::ClassifyResponse response;
      grpc::ClientContext context;
      PrepareContext(context, o.connection);
      // The server answered GetModelInfo: while it restarts, calls wait for
      // it (up to their deadline) instead of failing.
      context.set_wait_for_ready(true);
      grpc::Status status = stub.Classify(&context, request, &response);
      if (status.ok() &&
          response.predictions_size() != static_cast<int>(end - begin)) {
        status = grpc::Status(
            grpc::StatusCode::INTERNAL,
            absl::StrCat("server answered ", response.predictions_size(),
                         " of ", end - begin, " sequences"));
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = status;
        failed.store(true);
        return;
      }
      for (size_t i = begin; i < end; ++i) {
        sink.Put(send[i], std::move(*response.mutable_predictions(
                              static_cast<int>(i - begin))));
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(o.concurrency);
  for (int t = 0; t < o.concurrency; ++t) threads.emplace_back(worker);
  for (auto& thread : threads) thread.join();
  return first_error;
}

grpc::Status ClassifyStream(const ClientOptions& o,
                            v1::ArgClassifier::StubInterface& stub,
                            const std::vector<FastaRecord>& records,
                            const std::vector<size_t>& send,
                            OrderedSink& sink) {
  std::unordered_map<std::string_view, size_t> index_of;
  index_of.reserve(send.size());
  for (size_t i : send) index_of.emplace(records[i].id, i);
  std::vector<size_t> pending = send;

  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    PrepareContext(context, o.connection);
    context.set_wait_for_ready(true);
    auto stream = stub.ClassifyStream(&context);
    std::thread writer([&] {
      for (size_t begin = 0; begin < pending.size(); begin += o.batch_size) {
        v1::ClassifyStreamRequest request;
        request.mutable_options()->set_top_k(o.top_k);
        request.mutable_options()->set_long_sequences(
            RequestPolicy(o.long_sequences));
        for (size_t k = begin;
             k < std::min(pending.size(), begin + o.batch_size); ++k) {
          auto* sequence = request.add_sequences();
          sequence->set_id(records[pending[k]].id);
          sequence->set_residues(records[pending[k]].residues);
        }
        if (!stream->Write(request))
          break;  // The stream ended; Finish() says why.
      }
      stream->WritesDone();
    });
    std::vector<size_t> retry;
    grpc::Status sequence_error;
    v1::ClassifyStreamResponse response;
    while (stream->Read(&response)) {
      for (auto& prediction : *response.mutable_predictions()) {
        auto it = index_of.find(prediction.id());
        if (it == index_of.end()) continue;
        const auto code =
            static_cast<grpc::StatusCode>(prediction.status().code());
        if (code == grpc::StatusCode::OK) {
          sink.Put(it->second, std::move(prediction));
        } else if (Retryable(code) && attempt < o.connection.retries) {
          retry.push_back(it->second);
        } else if (!o.strict) {
          sink.Put(it->second, std::move(prediction));
        } else if (sequence_error.ok()) {
          sequence_error = grpc::Status(
              code, absl::StrCat("sequence '", prediction.id(),
                                 "': ", prediction.status().message()));
        }
      }
    }
    writer.join();
    grpc::Status status = stream->Finish();
    if (!sequence_error.ok()) return sequence_error;
    if (!status.ok()) {
      if (!Retryable(status.error_code()) || attempt >= o.connection.retries)
        return status;
      // Everything not yet answered is sent again.
      retry.clear();
      for (size_t i : pending) retry.push_back(i);
    }
    std::vector<size_t> unanswered(retry.begin(), retry.end());
    if (status.ok() && retry.empty()) return grpc::Status::OK;
    std::sort(unanswered.begin(), unanswered.end());
    // Only those not already delivered (a failed stream may have answered
    // some).
    pending.clear();
    for (size_t i : unanswered) {
      if (i >= sink.written()) pending.push_back(i);
    }
    if (pending.empty()) return grpc::Status::OK;
    std::this_thread::sleep_for(Backoff(attempt));
  }
}

}  // namespace argserve
