// The client's connection to argserve: channel (TLS, round-robin, gRPC's retry
// policy for unary calls), per-call deadline and credentials, and what a
// failed call means for the exit code.
#ifndef ARGSERVE_CLIENT_CONNECTION_H_
#define ARGSERVE_CLIENT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "client/options.h"

namespace argserve {

// gRPC's service config for the channel: unary ArgClassifier calls refused
// with UNAVAILABLE or RESOURCE_EXHAUSTED are retried by gRPC itself, up to
// `retries` times (gRPC allows at most 4), with exponential backoff.
std::string RetryServiceConfig(int retries);

// Throws UsageError when a TLS file cannot be read.
std::shared_ptr<grpc::Channel> Connect(const ConnectionOptions& options);

// Deadline and bearer token of one call.
void PrepareContext(grpc::ClientContext& context,
                    const ConnectionOptions& options);

int ExitCodeFor(const grpc::Status& status);

bool Retryable(grpc::StatusCode code);

// Wait before retry number `attempt` (0-based) of a stream.
std::chrono::milliseconds Backoff(int attempt);

}  // namespace argserve

#endif  // ARGSERVE_CLIENT_CONNECTION_H_
