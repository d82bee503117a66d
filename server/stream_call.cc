#include "server/stream_call.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <atomic>
#include <climits>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "argserve/v1/argserve.grpc.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "server/window_merge.h"

namespace argserve {
namespace {

// Field 1 (`sequences`), length-delimited.
constexpr uint32_t kSequencesTag = (1 << 3) | 2;

// Counts the `sequences` entries of a serialized ClassifyStreamRequest without
// parsing them, so an over-limit message costs no more than its bytes. Returns
// -1 when the bytes are not a well-formed message.
int64_t CountSequences(grpc::ByteBuffer& buffer) {
  grpc::ProtoBufferReader reader(&buffer);
  google::protobuf::io::CodedInputStream input(&reader);
  input.SetTotalBytesLimit(INT_MAX);
  int64_t count = 0;
  while (const uint32_t tag = input.ReadTag()) {
    if (tag == kSequencesTag) {
      uint32_t length = 0;
      if (!input.ReadVarint32(&length) || !input.Skip(static_cast<int>(length)))
        return -1;
      ++count;
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&input,
                                                                      tag)) {
      return -1;
    }
  }
  return input.ConsumedEntireMessage() ? count : -1;
}

class StreamReactor;

// The sequences of one stream message; answered together, in message order.
class StreamMessageJob final : public BatchJob {
 public:
  // `row_owner`: the accepted sequence of each submitted row; answered after
  // every row and one more call (index rows()) that releases the message.
  StreamMessageJob(StreamReactor* stream, v1::ClassifyStreamResponse response,
                   std::vector<int> row_owner, int nonarg_index, uint32_t top_k,
                   std::vector<int> positions)
      : stream_(stream),
        response_(std::move(response)),
        remaining_(row_owner.size() + 1),
        windows_(std::move(row_owner), nonarg_index),
        top_k_(top_k),
        positions_(std::move(positions)) {}

  size_t rows() const { return windows_.rows(); }

  bool IsCancelled() const override;
  void OnResult(size_t index, const absl::Status& status,
                absl::Span<const float> probabilities) override;

 private:
  StreamReactor* const stream_;
  v1::ClassifyStreamResponse response_;
  std::atomic<size_t> remaining_;
  WindowMerge windows_;
  const uint32_t top_k_;
  const std::vector<int>
      positions_;  // Accepted sequence -> position in response_.
};

class StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(const CallEnvironment& environment,
                grpc::CallbackServerContext* context)
      : environment_(environment),
        context_(context),
        start_(Clock::now()),
        deadline_(DeadlineOf(context)),
        peer_(context->peer()) {
    grpc::Status status = environment_.auth.Check(context);
    if (!status.ok()) {
      stream_ = StreamState::kFinished;
      final_code_ = status.error_code();
      Finish(status);
      return;
    }
    StartRead(&incoming_);
  }

  bool cancelled() const { return cancelled_.load(); }
  const CallEnvironment& environment() const { return environment_; }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishIfDone([this] { read_ = ReadState::kDone; });
      return;
    }
    ++messages_read_;
    const std::string message_name =
        absl::StrCat("stream message #", messages_read_);
    // The limit is checked before parsing: an over-limit message is refused
    // for the price of a scan of its bytes.
    const int64_t count = CountSequences(incoming_);
    v1::ClassifyStreamRequest request;
    if (grpc::Status too_many =
            environment_.preparer.CheckCount(count, message_name, "messages");
        !too_many.ok()) {
      Fail(too_many.error_message());
    } else if (count < 0 ||
               !grpc::SerializationTraits<
                    v1::ClassifyStreamRequest>::Deserialize(&incoming_,
                                                            &request)
                    .ok()) {
      Fail(absl::StrCat(message_name,
                        " is not a valid ClassifyStreamRequest (truncated, or "
                        "an id or residues that are not UTF-8); the messages "
                        "before it were answered, none after it was read"));
    } else {
      HandleMessage(request);
    }
  }

  void OnWriteDone(bool ok) override {
    bool resume_reading = false;
    const grpc::ByteBuffer* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ -= writes_.front().predictions;
      writes_.pop_front();
      if (!ok) {
        // The client is gone: what is left cannot be delivered.
        stream_ = StreamState::kClientGone;
        for (const auto& pending : writes_) in_flight_ -= pending.predictions;
        writes_.clear();
      } else if (!writes_.empty()) {
        next = &writes_.front().message;
      }
      if (read_ == ReadState::kPaused && stream_ == StreamState::kOpen &&
          !cancelled() &&
          in_flight_ < environment_.options.max_stream_in_flight) {
        read_ = ReadState::kReading;
        resume_reading = true;
      }
    }
    if (next != nullptr) StartWrite(next);
    if (resume_reading) StartRead(&incoming_);
    FinishIfDone([] {});
  }

  void OnCancel() override {
    cancelled_.store(true);
    environment_.metrics.OnCancelled(kClassifyStream);
    // With reads paused no read is outstanding, so no failed read will end the
    // stream: the cancellation must.
    FinishIfDone([this] {
      if (read_ == ReadState::kPaused) read_ = ReadState::kDone;
    });
  }

  void OnDone() override {
    grpc::StatusCode code = final_code_;
    // A client that vanished before the status reached it did not get an OK.
    if (code == grpc::StatusCode::OK && context_->IsCancelled())
      code = CancellationCode(deadline_);
    environment_.metrics.OnRequest(kClassifyStream, CodeName(code), 0,
                                   SecondsSince(start_));
    delete this;
  }

  // Called by a message job when all of its sequences are answered, on a
  // batcher thread: nothing may touch this object after Finish.
  void OnMessageDone(const v1::ClassifyStreamResponse& response) {
    const grpc::ByteBuffer* to_write = nullptr;
    std::optional<grpc::Status> finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --jobs_outstanding_;
      if (stream_ == StreamState::kClientGone || cancelled()) {
        in_flight_ -= response.predictions_size();
      } else {
        const bool idle = writes_.empty();
        PendingWrite pending;
        bool own_buffer = false;
        (void)grpc::SerializationTraits<v1::ClassifyStreamResponse>::Serialize(
            response, &pending.message, &own_buffer);
        pending.predictions = response.predictions_size();
        writes_.push_back(std::move(pending));
        if (idle) to_write = &writes_.front().message;
      }
      if (to_write == nullptr) finish = TakeFinishLocked();
    }
    // An outstanding write keeps the call (and this object) alive until its
    // reaction; OnWriteDone then finishes the stream if it is done.
    if (to_write != nullptr) {
      StartWrite(to_write);
    } else if (finish.has_value()) {
      Finish(*finish);
    }
  }

 private:
  enum class ReadState {
    kReading,  // A read is outstanding, or its message is being handled.
    kPaused,   // Too much unanswered: no read outstanding until writes drain.
    kDone,     // No read outstanding and none will start.
  };
  enum class StreamState {
    kOpen,
    kClientGone,  // A write failed: nothing more can be delivered.
    kFinished,    // Finish was called or is being called.
  };

  struct PendingWrite {
    grpc::ByteBuffer message;
    int predictions = 0;
  };

  // Stops reading; the stream ends with `message` once what was read is
  // answered.
  void Fail(const std::string& message) {
    FinishIfDone([&] {
      read_ = ReadState::kDone;
      if (error_.ok()) error_ = {grpc::StatusCode::INVALID_ARGUMENT, message};
    });
  }

  void HandleMessage(const v1::ClassifyStreamRequest& request) {
    PreparedMessage prepared = environment_.preparer.PrepareEach(
        request.sequences(), request.options().long_sequences());
    environment_.metrics.OnSequences(kClassifyStream, "INVALID_ARGUMENT",
                                     prepared.rejected);
    bool read_next = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ += request.sequences_size();
      ++jobs_outstanding_;
    }
    auto job = std::make_shared<StreamMessageJob>(
        this, std::move(prepared.response), std::move(prepared.row_owner),
        environment_.model.nonarg_index, request.options().top_k(),
        std::move(prepared.positions));
    const size_t rows = job->rows();
    if (rows > 0) {
      absl::Status submitted = environment_.batcher.Submit(
          job, std::move(prepared.tokens), deadline_, peer_);
      if (!submitted.ok()) {
        // Nothing of this message was queued: every valid sequence gets the
        // rejection.
        for (size_t row = 0; row < rows; ++row)
          job->OnResult(row, submitted, {});
      }
    }
    // The extra count taken above is released here, so a message with no valid
    // sequence is answered too, and never before all of its rows were handed
    // out.
    job->OnResult(rows, absl::OkStatus(), {});
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stream_ != StreamState::kOpen || cancelled()) {
        // Nothing more will be answered on this stream, or OnCancel ran before
        // this message was handled: no read is started.
        read_ = ReadState::kDone;
      } else if (in_flight_ < environment_.options.max_stream_in_flight) {
        read_next = true;
      } else {
        read_ = ReadState::kPaused;
      }
    }
    if (read_next) StartRead(&incoming_);
    FinishIfDone([] {});
  }

  // With mu_ held: when the stream is done (nothing queued, computing or
  // being written, and no read outstanding or to come), marks it finished and
  // returns its status.
  std::optional<grpc::Status> TakeFinishLocked() {
    if (stream_ == StreamState::kFinished || jobs_outstanding_ > 0 ||
        !writes_.empty())
      return std::nullopt;
    const bool client_gone = stream_ == StreamState::kClientGone;
    if (read_ != ReadState::kDone && !client_gone) return std::nullopt;
    stream_ = StreamState::kFinished;
    grpc::Status status;
    if (cancelled()) {
      status = grpc::Status(CancellationCode(deadline_), "call cancelled");
    } else if (client_gone) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "client stopped reading results");
    } else {
      status = error_;
    }
    final_code_ = status.error_code();
    return status;
  }

  // Applies `update` under the lock, then finishes the stream if it is done;
  // Finish is the last use of this object.
  template <typename Update>
  void FinishIfDone(Update update) {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      update();
      finish = TakeFinishLocked();
    }
    if (finish.has_value()) Finish(*finish);
  }

  const CallEnvironment& environment_;
  grpc::CallbackServerContext* const context_;
  const Clock::time_point start_;
  const Clock::time_point deadline_;
  const std::string peer_;  // Callers take turns in the batcher.
  grpc::ByteBuffer incoming_;
  int64_t messages_read_ = 0;  // Only touched by read reactions, one at a time.
  std::atomic<bool> cancelled_{false};

  std::mutex mu_;
  ReadState read_ = ReadState::kReading;
  StreamState stream_ = StreamState::kOpen;
  // Front is being written; a write is outstanding exactly when not empty.
  std::deque<PendingWrite> writes_;
  grpc::Status error_;  // Why reading stopped early, if it did.
  int jobs_outstanding_ = 0;
  int in_flight_ = 0;  // Sequences read and not yet written (or given up).
  grpc::StatusCode final_code_ = grpc::StatusCode::OK;
};

bool StreamMessageJob::IsCancelled() const { return stream_->cancelled(); }

void StreamMessageJob::OnResult(size_t row, const absl::Status& status,
                                absl::Span<const float> probabilities) {
  std::optional<WindowMerge::Done> done;
  if (row < windows_.rows()) done = windows_.Add(row, status, probabilities);
  if (done) {
    v1::Prediction& prediction =
        *response_.mutable_predictions(positions_[done->sequence]);
    if (done->status.ok()) {
      stream_->environment().call_rule.Fill(done->probabilities, top_k_,
                                            prediction);
    } else {
      prediction.mutable_status()->set_code(
          static_cast<int>(done->status.code()));
      prediction.mutable_status()->set_message(
          std::string{done->status.message()});
    }
  }
  if (remaining_.fetch_sub(1) != 1) return;
  std::unordered_map<std::string, int> by_code;
  for (int position : positions_) {
    by_code[CodeName(static_cast<grpc::StatusCode>(
        response_.predictions(position).status().code()))]++;
  }
  for (const auto& [code, count] : by_code)
    stream_->environment().metrics.OnSequences(kClassifyStream, code, count);
  stream_->OnMessageDone(response_);
}

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
StartClassifyStream(const CallEnvironment& environment,
                    grpc::CallbackServerContext* context) {
  return new StreamReactor(environment, context);
}

}  // namespace argserve
