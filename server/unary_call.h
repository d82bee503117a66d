// The unary Classify call: all of a request's sequences are checked, then
// computed in the batcher, and answered together.
#ifndef ARGSERVE_SERVER_UNARY_CALL_H_
#define ARGSERVE_SERVER_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include "argserve/v1/argserve.pb.h"
#include "server/call_environment.h"

namespace argserve {

inline constexpr char kClassify[] = "Classify";

grpc::ServerUnaryReactor* StartClassify(const CallEnvironment& environment,
                                        grpc::CallbackServerContext* context,
                                        const v1::ClassifyRequest* request,
                                        v1::ClassifyResponse* response);

}  // namespace argserve

#endif  // ARGSERVE_SERVER_UNARY_CALL_H_
