#include "server/sequence_preparer.h"

#include <optional>
#include <string>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "argserve/common/describe.h"

namespace argserve {
namespace {

// Ids seen so far in one message; an empty id is PrepareOne's error, not a
// duplicate.
class IdRegistry {
 public:
  explicit IdRegistry(int count) { first_index_.reserve(count); }

  // The refusal of the sequence at `index` when its id was seen before;
  // `where` ends the message (" of this message" or nothing).
  std::optional<grpc::Status> Add(const std::string& id, int index,
                                  const char* where) {
    auto [it, inserted] = first_index_.emplace(id, index);
    if (inserted || id.empty()) return std::nullopt;
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("duplicate sequence id ", DescribeId(id), " (sequences #",
                     it->second + 1, " and #", index + 1, where, ")"));
  }

 private:
  std::unordered_map<std::string_view, int> first_index_;
};

void SetReferenceHit(const NearestReferenceFinder& references,
                     const ReferenceHit& hit, v1::ReferenceHit& out) {
  const Reference& reference = references.reference(hit);
  out.set_id(reference.id);
  out.set_gene(reference.gene);
  out.set_accession(reference.accession);
  out.set_class_name(reference.class_name);
  out.set_identity_percent(static_cast<float>(100.0 * hit.identity));
  out.set_query_coverage_percent(
      static_cast<float>(100.0 * hit.query_coverage));
  out.set_reference_coverage_percent(
      static_cast<float>(100.0 * hit.reference_coverage));
  out.set_score(hit.score);
  out.set_bit_score(static_cast<float>(hit.bits));
  out.set_evalue(hit.evalue);
  out.set_query_start(hit.query_start);
  out.set_query_end(hit.query_end);
  out.set_reference_start(hit.reference_start);
  out.set_reference_end(hit.reference_end);
  out.set_reference_length(static_cast<uint32_t>(reference.residues.size()));
}

void FillReferenceHits(const NearestReferenceFinder& references,
                       absl::string_view residues, v1::Prediction& prediction) {
  const NearestReferences found = references.FindNearestAndArg(residues);
  if (found.nearest) {
    SetReferenceHit(references, *found.nearest,
                    *prediction.mutable_nearest_reference());
  }
  if (found.nearest_arg) {
    SetReferenceHit(references, *found.nearest_arg,
                    *prediction.mutable_nearest_arg_reference());
  }
}

}  // namespace

SequencePreparer::SequencePreparer(const ModelMetadata& metadata,
                                   const ServiceOptions& options,
                                   const NearestReferenceFinder* references)
    : options_(options), tokenizer_(metadata), references_(references) {}

grpc::Status SequencePreparer::CheckCount(int64_t count,
                                          const std::string& what,
                                          const std::string& parts) const {
  const int limit = options_.max_sequences_per_request;
  if (count <= limit) return grpc::Status::OK;
  return {
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat(what, " has ", count, " sequences, more than the limit of ",
                   limit, "; split it into several ", parts)};
}

LongSequencePolicy SequencePreparer::PolicyFor(
    v1::LongSequencePolicy requested) const {
  switch (requested) {
    case v1::LONG_SEQUENCES_REJECT:
      return LongSequencePolicy::kReject;
    case v1::LONG_SEQUENCES_TRUNCATE:
      return LongSequencePolicy::kTruncate;
    case v1::LONG_SEQUENCES_WINDOW:
      return LongSequencePolicy::kWindow;
    default:
      return options_.long_sequences;
  }
}

grpc::Status SequencePreparer::PrepareAll(
    const Sequences& sequences, v1::LongSequencePolicy requested,
    std::vector<std::vector<int64_t>>& tokens, std::vector<int>& row_owner,
    std::vector<v1::Prediction>& predictions) const {
  const LongSequencePolicy policy = PolicyFor(requested);
  const int count = sequences.size();
  if (count == 0)
    return {grpc::StatusCode::INVALID_ARGUMENT, "request has no sequences"};
  if (grpc::Status status = CheckCount(count, "request", "requests");
      !status.ok())
    return status;
  tokens.clear();
  tokens.reserve(count);
  row_owner.clear();
  predictions.assign(count, v1::Prediction());
  IdRegistry ids(count);
  for (int i = 0; i < count; ++i) {
    const v1::Sequence& sequence = sequences.Get(i);
    if (auto duplicate = ids.Add(sequence.id(), i, "")) return *duplicate;
    TokenizedSequence tokenized;
    grpc::Status status =
        PrepareOne(sequence, i, policy, tokenized, predictions[i]);
    if (!status.ok()) return status;
    tokens.push_back(std::move(tokenized.tokens));
    row_owner.push_back(i);
    for (auto& window : tokenized.more_windows) {
      tokens.push_back(std::move(window));
      row_owner.push_back(i);
    }
  }
  return grpc::Status::OK;
}

PreparedMessage SequencePreparer::PrepareEach(
    const Sequences& sequences, v1::LongSequencePolicy requested) const {
  const LongSequencePolicy policy = PolicyFor(requested);
  PreparedMessage prepared;
  const int count = sequences.size();
  IdRegistry ids(count);
  for (int i = 0; i < count; ++i) {
    const v1::Sequence& sequence = sequences.Get(i);
    v1::Prediction* prediction = prepared.response.add_predictions();
    prediction->set_id(sequence.id());
    grpc::Status status;
    if (auto duplicate = ids.Add(sequence.id(), i, " of this message")) {
      status = *duplicate;
    } else {
      TokenizedSequence tokenized;
      status = PrepareOne(sequence, i, policy, tokenized, *prediction);
      if (status.ok()) {
        const int accepted = static_cast<int>(prepared.positions.size());
        prepared.tokens.push_back(std::move(tokenized.tokens));
        prepared.row_owner.push_back(accepted);
        for (auto& window : tokenized.more_windows) {
          prepared.tokens.push_back(std::move(window));
          prepared.row_owner.push_back(accepted);
        }
        prepared.positions.push_back(i);
        continue;
      }
    }
    prediction->mutable_status()->set_code(status.error_code());
    prediction->mutable_status()->set_message(status.error_message());
    ++prepared.rejected;
  }
  return prepared;
}

grpc::Status SequencePreparer::PrepareOne(const v1::Sequence& sequence,
                                          int index, LongSequencePolicy policy,
                                          TokenizedSequence& tokenized,
                                          v1::Prediction& prediction) const {
  if (sequence.id().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("sequence #", index + 1, " has an empty id")};
  }
  absl::Status status =
      tokenizer_.Tokenize(sequence.residues(), policy, tokenized);
  if (!status.ok()) {
    std::string hint;
    if (absl::StrContains(status.message(), "maximum"))
      hint = " (policy reject; a request may ask for truncate)";
    return {grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("sequence ", DescribeId(sequence.id()), " (#",
                         index + 1, "): ", status.message(), hint)};
  }
  prediction.set_id(sequence.id());
  prediction.set_windows(
      tokenized.more_windows.empty()
          ? 0
          : static_cast<uint32_t>(tokenized.more_windows.size() + 1));
  prediction.set_length(tokenized.residues);
  prediction.set_truncated(tokenized.truncated);
  // The whole protein is aligned, also when the model sees a truncated one.
  if (references_ != nullptr) {
    FillReferenceHits(
        *references_,
        absl::string_view(sequence.residues()).substr(0, tokenized.residues),
        prediction);
  }
  return grpc::Status::OK;
}

}  // namespace argserve
