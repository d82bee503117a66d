// What an ArgClassifier call works with: the service's parts it needs, and the
// helpers that the unary and the stream call share.
#ifndef ARGSERVE_SERVER_CALL_ENVIRONMENT_H_
#define ARGSERVE_SERVER_CALL_ENVIRONMENT_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "argserve/model/metadata.h"
#include "server/auth.h"
#include "server/batcher.h"
#include "server/call_rule.h"
#include "server/metrics.h"
#include "server/sequence_preparer.h"
#include "server/service_options.h"

namespace argserve {

// Everything here outlives every call.
struct CallEnvironment {
  const ModelMetadata& model;
  const ServiceOptions& options;
  const BearerTokenAuth& auth;
  const SequencePreparer& preparer;
  const CallRule& call_rule;
  Batcher& batcher;
  Metrics& metrics;
};

// The call's deadline on the batcher's clock; max() for none.
Clock::time_point DeadlineOf(const grpc::CallbackServerContext* context);

// gRPC cancels a call whose deadline passed; what its client saw is the
// deadline.
grpc::StatusCode CancellationCode(Clock::time_point deadline);

// "OK", "INVALID_ARGUMENT", ...: the code label of the metrics.
std::string CodeName(grpc::StatusCode code);

double SecondsSince(Clock::time_point start);

// An absl status as a gRPC status with the same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace argserve

#endif  // ARGSERVE_SERVER_CALL_ENVIRONMENT_H_
