// The argserve.v1.ArgClassifier gRPC service (callback API: no thread is parked
// per call). The calls live in unary_call.cc and stream_call.cc; the service
// owns what they share.
#ifndef ARGSERVE_SERVER_SERVICE_H_
#define ARGSERVE_SERVER_SERVICE_H_

#include "argserve/model/classifier.h"
#include "argserve/v1/argserve.grpc.pb.h"
#include "server/auth.h"
#include "server/batcher.h"
#include "server/call_environment.h"
#include "server/call_rule.h"
#include "server/metrics.h"
#include "server/sequence_preparer.h"
#include "server/service_options.h"

namespace argserve {

// ClassifyStream is served on raw messages (stream_call.h); the other methods
// on parsed ones.
using ArgClassifierBase = v1::ArgClassifier::WithCallbackMethod_Classify<
    v1::ArgClassifier::WithRawCallbackMethod_ClassifyStream<
        v1::ArgClassifier::WithCallbackMethod_GetModelInfo<
            v1::ArgClassifier::Service>>>;

class ArgClassifierService final : public ArgClassifierBase {
 public:
  // All pointers must outlive the service; `references` null: no evidence.
  ArgClassifierService(ServiceOptions options, Classifier* classifier,
                       Batcher* batcher, Metrics* metrics,
                       const NearestReferenceFinder* references = nullptr);

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ClassifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;

  const SequencePreparer& preparer() const { return preparer_; }
  const CallRule& call_rule() const { return call_rule_; }

 private:
  const ServiceOptions options_;
  Metrics* const metrics_;
  const BearerTokenAuth auth_;
  const SequencePreparer preparer_;
  const CallRule call_rule_;
  const CallEnvironment environment_;
  v1::ModelInfo model_info_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_SERVICE_H_
