// The reference set a model artifact carries (references.tsv,
// docs/model-artifact.md): the labelled ARG proteins its evidence is drawn
// from.
#ifndef ARGSERVE_EVIDENCE_REFERENCE_SET_H_
#define ARGSERVE_EVIDENCE_REFERENCE_SET_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace argserve {

struct Reference {
  std::string id;         // E.g. ResFinder's "blaOXA-48_1_AY236073".
  std::string gene;       // "blaOXA-48".
  std::string accession;  // "AY236073"; empty when unknown.
  std::string class_name;
  std::string residues;  // Upper case.
};

// The gene family: the gene name without its allele number ("blaOXA-48" ->
// "blaOXA", "tet(M)" stays).
std::string GeneFamily(absl::string_view gene);

// Parses references.tsv: the header line "id gene accession class residues"
// (tab-separated), then one reference per line. Errors name `source`, the line
// and what is wrong.
absl::StatusOr<std::vector<Reference>> ParseReferenceTable(
    absl::string_view text, absl::string_view source);

}  // namespace argserve

#endif  // ARGSERVE_EVIDENCE_REFERENCE_SET_H_
