// Bearer-token authentication of ArgClassifier calls.
#ifndef ARGSERVE_SERVER_AUTH_H_
#define ARGSERVE_SERVER_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

namespace argserve {

// Compares in time that depends only on the lengths, so a caller cannot learn
// the token byte by byte.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class BearerTokenAuth {
 public:
  // An empty token turns authentication off.
  explicit BearerTokenAuth(std::string token) : token_(std::move(token)) {}

  // OK when authentication is off or the call carries "authorization: Bearer
  // <token>"; UNAUTHENTICATED otherwise.
  grpc::Status Check(const grpc::CallbackServerContext* context) const;

 private:
  const std::string token_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_AUTH_H_
