#include "server/call_environment.h"

#include <chrono>

namespace argserve {

Clock::time_point DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto remaining = context->deadline() - std::chrono::system_clock::now();
  // No deadline reads as a time point far in the future; treat anything beyond
  // a year as none.
  if (remaining > std::chrono::hours(24 * 365)) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(remaining);
}

grpc::StatusCode CancellationCode(Clock::time_point deadline) {
  return Clock::now() >= deadline ? grpc::StatusCode::DEADLINE_EXCEEDED
                                  : grpc::StatusCode::CANCELLED;
}

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(status.code()),
          std::string{status.message()}};
}

}  // namespace argserve
