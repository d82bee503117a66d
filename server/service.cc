#include "server/service.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <deque>
#include <mutex>
#include <numeric>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace argserve {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

constexpr char kClassify[] = "Classify";
constexpr char kClassifyStream[] = "ClassifyStream";
// Field 1 (`sequences`), length-delimited.
constexpr uint32_t kSequencesTag = (1 << 3) | 2;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The server context's deadline, on the batcher's clock.
Clock::time_point DeadlineOf(const CallbackServerContext* context) {
  const auto remaining = context->deadline() - std::chrono::system_clock::now();
  // No deadline reads as a time point far in the future; treat anything beyond
  // a year as none.
  if (remaining > std::chrono::hours(24 * 365)) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(remaining);
}

// gRPC cancels a call whose deadline passed; what its client saw is the
// deadline.
grpc::StatusCode CancellationCode(Clock::time_point deadline) {
  return Clock::now() >= deadline ? grpc::StatusCode::DEADLINE_EXCEEDED
                                  : grpc::StatusCode::CANCELLED;
}

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// A unary Classify call whose sequences are in the batcher.
class UnaryJob final : public BatchJob {
 public:
  UnaryJob(const ArgClassifierService* service, ServerUnaryReactor* reactor,
           v1::ClassifyResponse* response, size_t count, uint32_t top_k,
           Clock::time_point start, Clock::time_point deadline)
      : service_(service),
        reactor_(reactor),
        response_(response),
        remaining_(count),
        top_k_(top_k),
        start_(start),
        deadline_(deadline) {}

  void Cancel() { cancelled_.store(true); }
  bool IsCancelled() const override { return cancelled_.load(); }

  void OnResult(size_t index, const absl::Status& status,
                absl::Span<const float> probabilities) override {
    if (status.ok()) {
      // Each index is written by exactly one worker; the elements were created
      // before submission.
      service_->FillPrediction(
          probabilities, top_k_,
          *response_->mutable_predictions(static_cast<int>(index)));
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.ok()) error_ = status;
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
    service_->metrics()->OnRequest(
        kClassify, CodeName(code),
        static_cast<int>(response_->predictions_size()), SecondsSince(start_));
    reactor_->Finish(final_status);  // Last use of the call's objects.
  }

 private:
  const ArgClassifierService* const service_;
  ServerUnaryReactor* const reactor_;
  v1::ClassifyResponse* const response_;
  std::atomic<size_t> remaining_;
  const uint32_t top_k_;
  const Clock::time_point start_;
  const Clock::time_point deadline_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  absl::Status error_;
};

class UnaryReactor final : public ServerUnaryReactor {
 public:
  explicit UnaryReactor(Metrics* metrics) : metrics_(metrics) {}
  void set_job(std::shared_ptr<UnaryJob> job) { job_ = std::move(job); }
  void OnCancel() override {
    if (job_) job_->Cancel();
    metrics_->OnCancelled(kClassify);
  }
  void OnDone() override { delete this; }

 private:
  Metrics* const metrics_;
  std::shared_ptr<UnaryJob> job_;
};

class StreamReactor;

// The sequences of one ClassifyStream message; answered together, in message
// order.
class StreamMessageJob final : public BatchJob {
 public:
  StreamMessageJob(StreamReactor* stream, v1::ClassifyStreamResponse response,
                   size_t pending, uint32_t top_k, std::vector<int> positions)
      : stream_(stream),
        response_(std::move(response)),
        remaining_(pending),
        top_k_(top_k),
        positions_(std::move(positions)) {}

  bool IsCancelled() const override;
  void OnResult(size_t index, const absl::Status& status,
                absl::Span<const float> probabilities) override;

 private:
  StreamReactor* const stream_;
  v1::ClassifyStreamResponse response_;
  std::atomic<size_t> remaining_;
  const uint32_t top_k_;
  const std::vector<int>
      positions_;  // Submitted item index -> position in response_.
};

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

// Reads and writes raw messages so that a message that does not parse is told
// apart from the end of the stream (the generated reactor reports both as a
// failed read) and answered with an error instead of a silent OK.
class StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(const ArgClassifierService* service,
                CallbackServerContext* context)
      : service_(service),
        context_(context),
        start_(Clock::now()),
        deadline_(DeadlineOf(context)) {
    grpc::Status status = service_->Authenticate(context);
    if (!status.ok()) {
      finished_ = true;
      final_code_ = status.error_code();
      Finish(status);
      return;
    }
    StartRead(&incoming_);
  }

  bool cancelled() const { return cancelled_.load(); }
  const ArgClassifierService* service() const { return service_; }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishIfDone([this] { reads_done_ = true; });
      return;
    }
    ++messages_read_;
    const int64_t count = CountSequences(incoming_);
    const int limit = service_->options().max_sequences_per_request;
    v1::ClassifyStreamRequest request;
    // The limit is checked before parsing: an over-limit message is refused
    // for the price of a scan of its bytes.
    if (count > limit) {
      Fail(absl::StrCat("stream message #", messages_read_, " has ", count,
                        " sequences, more than the limit of ", limit,
                        "; split it into several messages"));
    } else if (count < 0 ||
               !grpc::SerializationTraits<
                    v1::ClassifyStreamRequest>::Deserialize(&incoming_,
                                                            &request)
                    .ok()) {
      Fail(absl::StrCat("stream message #", messages_read_,
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
      writing_ = false;
      if (!ok) {
        // The client is gone: what is left cannot be delivered.
        broken_ = true;
        for (const auto& pending : writes_) in_flight_ -= pending.predictions;
        writes_.clear();
      } else if (!writes_.empty()) {
        writing_ = true;
        next = &writes_.front().message;
      }
      if (read_paused_ && !reads_done_ && !broken_ && !cancelled() &&
          in_flight_ < service_->options().max_stream_in_flight) {
        read_paused_ = false;
        resume_reading = true;
      }
    }
    if (next != nullptr) StartWrite(next);
    if (resume_reading) StartRead(&incoming_);
    FinishIfDone([] {});
  }

  void OnCancel() override {
    cancelled_.store(true);
    service_->metrics()->OnCancelled(kClassifyStream);
    // With reads paused no read is outstanding, so no failed read will end the
    // stream: the cancellation must.
    FinishIfDone([this] {
      if (read_paused_) reads_done_ = true;
    });
  }

  void OnDone() override {
    grpc::StatusCode code = final_code_;
    // A client that vanished before the status reached it did not get an OK.
    if (code == grpc::StatusCode::OK && context_->IsCancelled())
      code = CancellationCode(deadline_);
    service_->metrics()->OnRequest(kClassifyStream, CodeName(code), 0,
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
      if (broken_ || cancelled()) {
        in_flight_ -= response.predictions_size();
      } else {
        PendingWrite pending;
        bool own_buffer = false;
        (void)grpc::SerializationTraits<v1::ClassifyStreamResponse>::Serialize(
            response, &pending.message, &own_buffer);
        pending.predictions = response.predictions_size();
        writes_.push_back(std::move(pending));
        if (!writing_) {
          writing_ = true;
          to_write = &writes_.front().message;
        }
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
  struct PendingWrite {
    grpc::ByteBuffer message;
    int predictions = 0;
  };

  // Stops reading; the stream ends with `message` once what was read is
  // answered.
  void Fail(const std::string& message) {
    FinishIfDone([&] {
      reads_done_ = true;
      if (error_.ok()) error_ = {grpc::StatusCode::INVALID_ARGUMENT, message};
    });
  }

  void HandleMessage(const v1::ClassifyStreamRequest& request) {
    const uint32_t top_k = request.options().top_k();
    const int count = request.sequences_size();
    v1::ClassifyStreamResponse response;
    std::vector<std::vector<int64_t>> tokens;
    std::vector<int> positions;
    std::unordered_map<std::string_view, int> seen;
    int rejected = 0;
    for (int i = 0; i < count; ++i) {
      const v1::Sequence& sequence = request.sequences(i);
      v1::Prediction* prediction = response.add_predictions();
      prediction->set_id(sequence.id());
      grpc::Status status;
      if (auto [it, inserted] = seen.emplace(sequence.id(), i);
          !inserted && !sequence.id().empty()) {
        status = grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("duplicate sequence id ", DescribeId(sequence.id()),
                         " (sequences #", it->second + 1, " and #", i + 1,
                         " of this message)"));
      } else {
        std::vector<int64_t> sequence_tokens;
        status =
            service_->PrepareOne(sequence, i, sequence_tokens, *prediction);
        if (status.ok()) {
          tokens.push_back(std::move(sequence_tokens));
          positions.push_back(i);
          continue;
        }
      }
      prediction->mutable_status()->set_code(status.error_code());
      prediction->mutable_status()->set_message(status.error_message());
      ++rejected;
    }
    service_->metrics()->OnSequences(kClassifyStream, "INVALID_ARGUMENT",
                                     rejected);

    bool read_next = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ += count;
      ++jobs_outstanding_;
    }
    auto job = std::make_shared<StreamMessageJob>(
        this, std::move(response), tokens.size() + 1, top_k, positions);
    if (!tokens.empty()) {
      absl::Status submitted =
          service_->batcher()->Submit(job, std::move(tokens), deadline_);
      if (!submitted.ok()) {
        // Nothing of this message was queued: every valid sequence gets the
        // rejection.
        for (size_t item = 0; item < positions.size(); ++item)
          job->OnResult(item, submitted, {});
      }
    }
    // The extra count taken above is released here, so a message with no valid
    // sequence is answered too, and never before all of its items were handed
    // out.
    job->OnResult(positions.size(), absl::OkStatus(), {});
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || broken_) {
        // Nothing more will be answered on this stream.
      } else if (cancelled()) {
        // OnCancel may have run before this message was handled; no read is
        // started, so none will end the stream.
        read_paused_ = true;
        reads_done_ = true;
      } else if (in_flight_ < service_->options().max_stream_in_flight) {
        read_next = true;
      } else {
        read_paused_ = true;
      }
    }
    if (read_next) StartRead(&incoming_);
    FinishIfDone([] {});
  }

  // With mu_ held: when the stream is done (nothing queued, computing or
  // being written, and no read outstanding or to come), marks it finished and
  // returns its status.
  std::optional<grpc::Status> TakeFinishLocked() {
    if (finished_ || jobs_outstanding_ > 0 || writing_ || !writes_.empty())
      return std::nullopt;
    if (!reads_done_ && !broken_) return std::nullopt;
    finished_ = true;
    grpc::Status status;
    if (cancelled()) {
      status = grpc::Status(CancellationCode(deadline_), "call cancelled");
    } else if (broken_) {
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

  const ArgClassifierService* const service_;
  CallbackServerContext* const context_;
  const Clock::time_point start_;
  const Clock::time_point deadline_;
  grpc::ByteBuffer incoming_;
  int64_t messages_read_ = 0;  // Only touched by read reactions, one at a time.
  std::atomic<bool> cancelled_{false};

  std::mutex mu_;
  std::deque<PendingWrite> writes_;  // Front is being written while writing_.
  bool writing_ = false;
  bool reads_done_ = false;  // No read is outstanding and none will start.
  bool read_paused_ = false;
  bool broken_ = false;
  bool finished_ = false;
  grpc::Status error_;  // Why reading stopped early, if it did.
  int jobs_outstanding_ = 0;
  int in_flight_ = 0;  // Sequences read and not yet written (or given up).
  grpc::StatusCode final_code_ = grpc::StatusCode::OK;
};

bool StreamMessageJob::IsCancelled() const { return stream_->cancelled(); }

void StreamMessageJob::OnResult(size_t index, const absl::Status& status,
                                absl::Span<const float> probabilities) {
  if (index < positions_.size()) {
    v1::Prediction& prediction =
        *response_.mutable_predictions(positions_[index]);
    if (status.ok()) {
      stream_->service()->FillPrediction(probabilities, top_k_, prediction);
    } else {
      prediction.mutable_status()->set_code(static_cast<int>(status.code()));
      prediction.mutable_status()->set_message(std::string{status.message()});
    }
  }
  if (remaining_.fetch_sub(1) != 1) return;
  std::unordered_map<std::string, int> by_code;
  for (int position : positions_) {
    by_code[CodeName(static_cast<grpc::StatusCode>(
        response_.predictions(position).status().code()))]++;
  }
  for (const auto& [code, count] : by_code)
    stream_->service()->metrics()->OnSequences(kClassifyStream, code, count);
  stream_->OnMessageDone(response_);
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    difference |= x ^ y;
  }
  return difference == 0;
}

grpc::Status ArgClassifierService::Authenticate(
    const grpc::CallbackServerContext* context) const {
  if (options_.auth_token.empty()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  static constexpr std::string_view kBearer = "Bearer ";
  if (it != metadata.end()) {
    const std::string_view value(it->second.data(), it->second.size());
    if (value.substr(0, kBearer.size()) == kBearer &&
        ConstantTimeEquals(value.substr(kBearer.size()), options_.auth_token)) {
      return grpc::Status::OK;
    }
  }
  // The message never echoes what was sent: tokens must not reach logs or
  // clients.
  return {grpc::StatusCode::UNAUTHENTICATED, "missing or invalid bearer token"};
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(status.code()),
          std::string{status.message()}};
}

ArgClassifierService::ArgClassifierService(ServiceOptions options,
                                           Classifier* classifier,
                                           Batcher* batcher, Metrics* metrics)
    : options_(std::move(options)),
      classifier_(classifier),
      batcher_(batcher),
      metrics_(metrics),
      tokenizer_(classifier->metadata()) {
  const ModelMetadata& m = classifier->metadata();
  model_info_.set_name(m.name);
  model_info_.set_version(m.version);
  model_info_.set_format(m.format);
  for (const auto& name : m.classes) model_info_.add_classes(name);
  model_info_.set_nonarg_class(m.nonarg_class);
  model_info_.set_max_residues(m.max_residues);
  auto* backbone = model_info_.mutable_backbone();
  backbone->set_architecture(m.backbone_architecture);
  backbone->set_num_layers(m.num_layers);
  backbone->set_embed_dim(m.embed_dim);
  backbone->set_attention_heads(m.attention_heads);
  backbone->set_source(m.backbone_source);
  model_info_.set_device(classifier->device());
  model_info_.set_long_sequence_policy(
      options_.long_sequences == LongSequencePolicy::kReject ? "reject"
                                                             : "truncate");
  model_info_.set_max_sequences_per_request(options_.max_sequences_per_request);
  model_info_.set_metadata_json(m.raw_json);
  model_info_.set_arg_threshold(
      static_cast<float>(m.arg_threshold.value_or(0.0)));
  model_info_.set_min_residues(m.min_residues);
}

grpc::Status ArgClassifierService::Prepare(
    const google::protobuf::RepeatedPtrField<v1::Sequence>& sequences,
    std::vector<std::vector<int64_t>>& tokens,
    std::vector<v1::Prediction>& predictions) const {
  const int count = sequences.size();
  if (count == 0)
    return {grpc::StatusCode::INVALID_ARGUMENT, "request has no sequences"};
  if (count > options_.max_sequences_per_request) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("request has ", count,
                         " sequences, more than the limit of ",
                         options_.max_sequences_per_request,
                         "; split it into several requests")};
  }
  tokens.assign(count, {});
  predictions.assign(count, v1::Prediction());
  std::unordered_map<std::string_view, int> seen;
  seen.reserve(count);
  for (int i = 0; i < count; ++i) {
    const v1::Sequence& sequence = sequences.Get(i);
    if (auto [it, inserted] = seen.emplace(sequence.id(), i);
        !inserted && !sequence.id().empty()) {
      return {
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("duplicate sequence id ", DescribeId(sequence.id()),
                       " (sequences #", it->second + 1, " and #", i + 1, ")")};
    }
    grpc::Status status = PrepareOne(sequence, i, tokens[i], predictions[i]);
    if (!status.ok()) return status;
  }
  return grpc::Status::OK;
}

grpc::Status ArgClassifierService::PrepareOne(
    const v1::Sequence& sequence, int index, std::vector<int64_t>& tokens,
    v1::Prediction& prediction) const {
  if (sequence.id().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("sequence #", index + 1, " has an empty id")};
  }
  TokenizedSequence tokenized;
  absl::Status status = tokenizer_.Tokenize(sequence.residues(),
                                            options_.long_sequences, tokenized);
  if (!status.ok()) {
    std::string hint;
    if (absl::StrContains(status.message(), "maximum"))
      hint = " (server policy: --long_sequences=reject)";
    return {grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("sequence ", DescribeId(sequence.id()), " (#",
                         index + 1, "): ", status.message(), hint)};
  }
  tokens = std::move(tokenized.tokens);
  prediction.set_id(sequence.id());
  prediction.set_length(tokenized.residues);
  prediction.set_truncated(tokenized.truncated);
  return grpc::Status::OK;
}

void ArgClassifierService::FillPrediction(absl::Span<const float> probabilities,
                                          uint32_t top_k,
                                          v1::Prediction& prediction) const {
  const ModelMetadata& m = classifier_->metadata();
  std::vector<int> order(probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return probabilities[a] > probabilities[b];
  });
  const size_t shown =
      top_k == 0 ? order.size() : std::min<size_t>(top_k, order.size());
  const float arg_probability = 1.0f - probabilities[m.nonarg_index];
  const bool too_short = static_cast<int>(prediction.length()) < m.min_residues;
  // The call rule of docs/model-artifact.md: with a threshold, P(ARG) decides
  // and the class is the most probable antibiotic class.
  bool is_arg = order[0] != m.nonarg_index;
  if (m.arg_threshold.has_value()) is_arg = arg_probability >= *m.arg_threshold;
  if (too_short) is_arg = false;
  int called = m.nonarg_index;
  if (is_arg) {
    called = order[0] != m.nonarg_index ? order[0] : order[1];
  }
  prediction.set_predicted_class(m.classes[called]);
  prediction.set_probability(probabilities[called]);
  prediction.set_is_arg(is_arg);
  prediction.set_arg_probability(arg_probability);
  prediction.set_below_min_residues(too_short);
  prediction.clear_scores();
  for (size_t i = 0; i < shown; ++i) {
    auto* score = prediction.add_scores();
    score->set_class_name(m.classes[order[i]]);
    score->set_probability(probabilities[order[i]]);
  }
}

grpc::ServerUnaryReactor* ArgClassifierService::Classify(
    CallbackServerContext* context, const v1::ClassifyRequest* request,
    v1::ClassifyResponse* response) {
  const auto start = Clock::now();
  auto* reactor = new UnaryReactor(metrics_);
  std::vector<std::vector<int64_t>> tokens;
  std::vector<v1::Prediction> predictions;
  grpc::Status status = Authenticate(context);
  if (status.ok()) status = Prepare(request->sequences(), tokens, predictions);
  if (!status.ok()) {
    metrics_->OnRequest(kClassify, CodeName(status.error_code()),
                        request->sequences_size(), SecondsSince(start));
    reactor->Finish(status);
    return reactor;
  }
  response->set_model_name(classifier_->metadata().name);
  response->set_model_version(classifier_->metadata().version);
  response->mutable_predictions()->Reserve(
      static_cast<int>(predictions.size()));
  for (auto& prediction : predictions)
    *response->add_predictions() = std::move(prediction);
  const Clock::time_point deadline = DeadlineOf(context);
  auto job =
      std::make_shared<UnaryJob>(this, reactor, response, tokens.size(),
                                 request->options().top_k(), start, deadline);
  reactor->set_job(job);
  absl::Status submitted = batcher_->Submit(job, std::move(tokens), deadline);
  if (!submitted.ok()) {
    response->clear_predictions();
    metrics_->OnRequest(kClassify, absl::StatusCodeToString(submitted.code()),
                        request->sequences_size(), SecondsSince(start));
    reactor->Finish(ToGrpc(submitted));
  }
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
ArgClassifierService::ClassifyStream(CallbackServerContext* context) {
  return new StreamReactor(this, context);
}

grpc::ServerUnaryReactor* ArgClassifierService::GetModelInfo(
    CallbackServerContext* context, const v1::GetModelInfoRequest* /*request*/,
    v1::ModelInfo* response) {
  auto* reactor = context->DefaultReactor();
  grpc::Status status = Authenticate(context);
  if (status.ok()) *response = model_info_;
  metrics_->OnRequest("GetModelInfo", CodeName(status.error_code()), 0, 0);
  reactor->Finish(status);
  return reactor;
}

}  // namespace argserve
