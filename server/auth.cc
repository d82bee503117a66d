#include "server/auth.h"

#include <algorithm>

namespace argserve {

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

grpc::Status BearerTokenAuth::Check(
    const grpc::CallbackServerContext* context) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  static constexpr std::string_view kBearer = "Bearer ";
  if (it != metadata.end()) {
    const std::string_view value(it->second.data(), it->second.size());
    if (value.substr(0, kBearer.size()) == kBearer &&
        ConstantTimeEquals(value.substr(kBearer.size()), token_)) {
      return grpc::Status::OK;
    }
  }
  // The message never echoes what was sent: tokens must not reach logs or
  // clients.
  return {grpc::StatusCode::UNAUTHENTICATED, "missing or invalid bearer token"};
}

}  // namespace argserve
