// Request preparation shared by Classify and ClassifyStream: the size limit,
// unique ids, and the residue check and tokenization of each sequence. Errors
// name the sequence (id and 1-based position) and what is wrong.
#ifndef ARGSERVE_SERVER_SEQUENCE_PREPARER_H_
#define ARGSERVE_SERVER_SEQUENCE_PREPARER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "argserve/evidence/nearest_reference.h"
#include "argserve/model/metadata.h"
#include "argserve/model/tokenizer.h"
#include "argserve/v1/argserve.pb.h"
#include "server/service_options.h"

namespace argserve {

using Sequences = google::protobuf::RepeatedPtrField<v1::Sequence>;

// The sequences of a stream message that can be computed, and the answers of
// those that cannot.
struct PreparedMessage {
  // One prediction per sequence, in message order; a refused one carries its
  // status.
  v1::ClassifyStreamResponse response;
  // Token rows of the accepted sequences: one each, or one per window.
  std::vector<std::vector<int64_t>> tokens;
  std::vector<int> row_owner;  // Row -> accepted sequence.
  std::vector<int> positions;  // Accepted sequence -> index in `response`.
  int rejected = 0;
};

class SequencePreparer {
 public:
  // `metadata`, `options` and `references` (null: no evidence) must outlive
  // the preparer.
  SequencePreparer(const ModelMetadata& metadata, const ServiceOptions& options,
                   const NearestReferenceFinder* references = nullptr);

  // INVALID_ARGUMENT when `count` exceeds the per-message limit; `what` names
  // the message ("request", "stream message #3"), `parts` what to split it
  // into.
  grpc::Status CheckCount(int64_t count, const std::string& what,
                          const std::string& parts) const;

  // A Classify request, all or nothing: on success `tokens` holds the token
  // rows (one per sequence, or one per window), `row_owner` the sequence of
  // each row, and `predictions` their id, length and truncated flag.
  // `requested`: the request's long-sequence policy.
  grpc::Status PrepareAll(const Sequences& sequences,
                          v1::LongSequencePolicy requested,
                          std::vector<std::vector<int64_t>>& tokens,
                          std::vector<int>& row_owner,
                          std::vector<v1::Prediction>& predictions) const;

  // A ClassifyStream message, each sequence on its own.
  PreparedMessage PrepareEach(const Sequences& sequences,
                              v1::LongSequencePolicy requested) const;

  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  // Checks and tokenizes the sequence at `index` (0-based) of its message;
  // fills `tokens` and the prediction's id, length, truncated flag and
  // nearest reference.
  grpc::Status PrepareOne(const v1::Sequence& sequence, int index,
                          LongSequencePolicy policy,
                          TokenizedSequence& tokenized,
                          v1::Prediction& prediction) const;

  // The request's policy, or the server's when the request has none.
  LongSequencePolicy PolicyFor(v1::LongSequencePolicy requested) const;

  const ServiceOptions& options_;
  const Tokenizer tokenizer_;
  const NearestReferenceFinder* const references_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_SEQUENCE_PREPARER_H_
