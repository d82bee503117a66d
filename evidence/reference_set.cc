#include "argserve/evidence/reference_set.h"

#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace argserve {
namespace {

constexpr char kHeader[] = "id\tgene\taccession\tclass\tresidues";

}  // namespace

std::string GeneFamily(absl::string_view gene) {
  // Allele numbers follow the last '-' ("blaTEM-1", "blaOXA-48"); other
  // dashes are part of the name ("aac(6')-Ib").
  const size_t dash = gene.rfind('-');
  if (dash == absl::string_view::npos || dash + 1 == gene.size()) {
    return std::string{gene};
  }
  for (size_t i = dash + 1; i < gene.size(); ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(gene[i]))) {
      return std::string{gene};
    }
  }
  return std::string{gene.substr(0, dash)};
}

absl::StatusOr<std::vector<Reference>> ParseReferenceTable(
    absl::string_view text, absl::string_view source) {
  std::vector<Reference> references;
  std::unordered_set<std::string> ids;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::ConsumeSuffix(&line, "\r");
    if (line_number == 1) {
      if (line != kHeader) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ":1: expected the header '",
                         absl::StrJoin(absl::StrSplit(kHeader, '\t'), " "),
                         "' (tab-separated)"));
      }
      continue;
    }
    if (line.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    const std::string where = absl::StrCat(source, ":", line_number, ": ");
    if (fields.size() != 5) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "expected 5 tab-separated fields, found ", fields.size()));
    }
    Reference reference{std::string{fields[0]}, std::string{fields[1]},
                        std::string{fields[2]}, std::string{fields[3]},
                        absl::AsciiStrToUpper(fields[4])};
    if (reference.id.empty() || reference.class_name.empty() ||
        reference.residues.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "id, class and residues must not be empty"));
    }
    for (size_t i = 0; i < reference.residues.size(); ++i) {
      if (!absl::ascii_isalpha(
              static_cast<unsigned char>(reference.residues[i]))) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "reference '", reference.id,
                         "': invalid character at residue ", i + 1));
      }
    }
    if (!ids.insert(reference.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "duplicate reference id '", reference.id, "'"));
    }
    if (reference.gene.empty()) reference.gene = reference.id;
    references.push_back(std::move(reference));
  }
  if (line_number == 0 || text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": empty; expected the header line"));
  }
  return references;
}

}  // namespace argserve
