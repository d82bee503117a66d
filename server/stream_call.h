// The ClassifyStream call: messages of sequences in, one response per message
// out, in order, with per-sequence statuses; reading pauses while too much of
// the stream is unanswered.
#ifndef ARGSERVE_SERVER_STREAM_CALL_H_
#define ARGSERVE_SERVER_STREAM_CALL_H_

#include <grpcpp/grpcpp.h>

#include "server/call_environment.h"

namespace argserve {

inline constexpr char kClassifyStream[] = "ClassifyStream";

// Served on raw messages, so that a message that does not parse is told apart
// from the end of the stream (the generated reactor reports both as a failed
// read) and answered with an error instead of a silent OK.
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
StartClassifyStream(const CallEnvironment& environment,
                    grpc::CallbackServerContext* context);

}  // namespace argserve

#endif  // ARGSERVE_SERVER_STREAM_CALL_H_
