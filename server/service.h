// The argserve.v1.ArgClassifier gRPC service (callback API: no thread is parked
// per call).
#ifndef ARGSERVE_SERVER_SERVICE_H_
#define ARGSERVE_SERVER_SERVICE_H_

#include <string>
#include <string_view>

#include "argserve/model/classifier.h"
#include "argserve/model/tokenizer.h"
#include "argserve/v1/argserve.grpc.pb.h"
#include "server/batcher.h"
#include "server/metrics.h"

namespace argserve {

struct ServiceOptions {
  // Sequences longer than the model's max_residues: rejected, or cut to
  // max_residues and flagged.
  LongSequencePolicy long_sequences = LongSequencePolicy::kReject;
  // Most sequences in one Classify request or one ClassifyStream message.
  int max_sequences_per_request = 10000;
  // Most sequences of one stream that are queued, computing, or waiting to be
  // written; the server stops reading the stream until it drops below, so a
  // fast producer cannot exhaust memory.
  int max_stream_in_flight = 2048;
  // When set, every ArgClassifier call must carry "authorization: Bearer
  // <token>"; others get UNAUTHENTICATED. The health service is not part of
  // this service and stays open.
  std::string auth_token;
};

// Compares in time that depends only on the lengths, so a caller cannot learn
// the token byte by byte.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// ClassifyStream is served on raw messages (see StreamReactor in service.cc);
// the other methods on parsed ones.
using ArgClassifierBase = v1::ArgClassifier::WithCallbackMethod_Classify<
    v1::ArgClassifier::WithRawCallbackMethod_ClassifyStream<
        v1::ArgClassifier::WithCallbackMethod_GetModelInfo<
            v1::ArgClassifier::Service>>>;

class ArgClassifierService final : public ArgClassifierBase {
 public:
  // All pointers must outlive the service.
  ArgClassifierService(ServiceOptions options, Classifier* classifier,
                       Batcher* batcher, Metrics* metrics);

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ClassifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;

  // Validates and tokenizes the sequences of one request. On success fills
  // `tokens` (one row per sequence) and `predictions` (id, length, truncated).
  // Errors name the sequence and position.
  grpc::Status Prepare(
      const google::protobuf::RepeatedPtrField<v1::Sequence>& sequences,
      std::vector<std::vector<int64_t>>& tokens,
      std::vector<v1::Prediction>& predictions) const;

  // Validates and tokenizes the sequence at `index` (0-based) of its request
  // or stream message; fills `tokens` and the prediction's id, length and
  // truncated flag. Duplicate ids are the caller's check.
  grpc::Status PrepareOne(const v1::Sequence& sequence, int index,
                          std::vector<int64_t>& tokens,
                          v1::Prediction& prediction) const;

  // Fills a prediction's class fields from class probabilities.
  void FillPrediction(absl::Span<const float> probabilities, uint32_t top_k,
                      v1::Prediction& prediction) const;

  const ServiceOptions& options() const { return options_; }
  Batcher* batcher() const { return batcher_; }
  Metrics* metrics() const { return metrics_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

  // OK when authentication is off or the call carries the right bearer token.
  grpc::Status Authenticate(const grpc::CallbackServerContext* context) const;

 private:
  const ServiceOptions options_;
  Classifier* const classifier_;
  Batcher* const batcher_;
  Metrics* const metrics_;
  const Tokenizer tokenizer_;
  v1::ModelInfo model_info_;
};

// Maps an absl status to a gRPC status with the same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace argserve

#endif  // ARGSERVE_SERVER_SERVICE_H_
