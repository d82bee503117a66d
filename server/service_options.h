// What the ArgClassifier calls may accept, set from the server's flags
// (server/server_options.h).
#ifndef ARGSERVE_SERVER_SERVICE_OPTIONS_H_
#define ARGSERVE_SERVER_SERVICE_OPTIONS_H_

#include <string>

#include "argserve/model/tokenizer.h"

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

}  // namespace argserve

#endif  // ARGSERVE_SERVER_SERVICE_OPTIONS_H_
