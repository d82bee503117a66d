// The self-description stored as model.json inside a model artifact
// (docs/model-artifact.md).
#ifndef ARGSERVE_MODEL_METADATA_H_
#define ARGSERVE_MODEL_METADATA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace argserve {

inline constexpr char kModelFormat[] = "argserve-model/1";

// model.json "references": the artifact's reference set (references.tsv).
struct ReferenceSetInfo {
  std::string file;
  int count = 0;
  std::string sha256;
  std::string source;
  std::string version;
};

// model.json "evidence": when a reference decides the call.
struct EvidenceRule {
  double reference_min_identity = 0.8;  // Fraction of alignment columns.
  double reference_min_coverage = 0.6;  // Fraction of the reference.
  double max_evalue = 1e-5;             // Weaker alignments are no evidence.
  // A hit to an ARG reference below the identity threshold (coverage as
  // above) decides when the model's P(ARG) reaches this; unset: never.
  std::optional<double> homolog_min_arg_probability;
  // The P(ARG) an ARG call needs when no reference aligns; unset: the model's
  // own threshold is enough.
  std::optional<double> novel_min_arg_probability;
};

struct ModelMetadata {
  std::string format;
  std::string name;
  std::string version;
  std::vector<std::string> classes;  // In logit order.
  std::string nonarg_class;
  int nonarg_index = -1;
  std::vector<std::string> alphabet;  // Token strings in index order.
  int64_t cls_token = 0;
  int64_t pad_token = 0;
  int64_t eos_token = 0;
  int64_t unk_token = 0;
  int64_t mask_token = 0;
  std::string residues;  // Accepted residue letters.
  int max_residues = 0;
  std::string backbone_architecture;
  int num_layers = 0;
  int embed_dim = 0;
  int attention_heads = 0;
  std::string backbone_source;
  // From "calibration": a protein is an ARG when 1 - P(nonarg) reaches the
  // threshold (and it has at least min_residues); absent, the most probable
  // class decides.
  std::optional<double> arg_threshold;
  int min_residues = 0;
  std::optional<ReferenceSetInfo> references;
  EvidenceRule evidence;
  std::string raw_json;  // The complete model.json as stored.
  // references.tsv as stored in the artifact; empty without a reference set.
  std::string references_table;
};

// Parses and checks model.json. Errors name the missing or malformed key.
absl::StatusOr<ModelMetadata> ParseModelMetadata(const std::string& json_text);

}  // namespace argserve

#endif  // ARGSERVE_MODEL_METADATA_H_
