#include "client/connection.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace argserve {
namespace {

// gRPC's own limit on attempts per call, retries included.
constexpr int kMaxAttempts = 5;
// A request larger than the retry buffer is never retried: room for the
// largest request the client sends.
constexpr int kRetryBufferBytes = 256 << 20;

}  // namespace

std::string RetryServiceConfig(int retries) {
  const int attempts = std::min(retries + 1, kMaxAttempts);
  if (attempts < 2) return "{}";
  return absl::StrFormat(
      R"({"methodConfig": [{"name": [)"
      R"({"service": "argserve.v1.ArgClassifier", "method": "Classify"}, )"
      R"({"service": "argserve.v1.ArgClassifier", "method": "GetModelInfo"}], )"
      R"("retryPolicy": {"maxAttempts": %d, "initialBackoff": "0.1s", )"
      R"("maxBackoff": "5s", "backoffMultiplier": 2, )"
      R"("retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]}}]})",
      attempts);
}

std::shared_ptr<grpc::Channel> Connect(const ConnectionOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls_ca.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFileOrThrow(options.tls_ca);
    if (!options.tls_cert.empty()) {
      ssl.pem_cert_chain = ReadFileOrThrow(options.tls_cert);
      ssl.pem_private_key = ReadFileOrThrow(options.tls_key);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  arguments.SetLoadBalancingPolicyName("round_robin");
  arguments.SetMaxReceiveMessageSize(-1);
  arguments.SetMaxSendMessageSize(-1);
  arguments.SetServiceConfigJSON(RetryServiceConfig(options.retries));
  arguments.SetInt(GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE, kRetryBufferBytes);
  return grpc::CreateCustomChannel(options.target, credentials, arguments);
}

void PrepareContext(grpc::ClientContext& context,
                    const ConnectionOptions& options) {
  if (!options.token.empty())
    context.AddMetadata("authorization", "Bearer " + options.token);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(
                           options.deadline_seconds * 1e6)));
}

int ExitCodeFor(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kExitBadInput;
    default:
      return kExitServerError;
  }
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

std::chrono::milliseconds Backoff(int attempt) {
  const int64_t ms = std::min<int64_t>(100LL << std::min(attempt, 10), 5000);
  return std::chrono::milliseconds(ms);
}

}  // namespace argserve
