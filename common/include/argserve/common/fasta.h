// FASTA reading: plain or gzip files, or standard input, checked strictly so
// that bad input is reported (file, line, record) before anything is sent.
#ifndef ARGSERVE_COMMON_FASTA_H_
#define ARGSERVE_COMMON_FASTA_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "argserve/common/residues.h"

namespace argserve {

struct FastaRecord {
  std::string id;           // Header text up to the first whitespace.
  std::string description;  // Rest of the header line.
  std::string residues;     // Sequence lines joined, whitespace removed.
  std::string source;       // File name ("-" or "<stdin>" for standard input).
  int line = 0;             // Line of the header.
};

// Reads every record of `path` ("-" reads standard input) and appends them to
// `records`, residues checked against `alphabet` (residues.h) and without
// their final '*'. Errors (INVALID_ARGUMENT, NOT_FOUND) read "FILE:LINE:
// record 'ID': what is wrong".
absl::Status ReadFasta(
    const std::string& path, std::vector<FastaRecord>& records,
    const ResidueAlphabet& alphabet = ResidueAlphabet::AnyLetter());

// Parses FASTA text already in memory; `source` names it in errors.
absl::Status ParseFasta(
    const std::string& text, const std::string& source,
    std::vector<FastaRecord>& records,
    const ResidueAlphabet& alphabet = ResidueAlphabet::AnyLetter());

// Checks a record read with a looser alphabet against `alphabet` (the
// model's); the error names the record's file, line and residue.
absl::Status CheckResidues(const FastaRecord& record,
                           const ResidueAlphabet& alphabet);

// Checks ids are unique over all records; the error names both places.
absl::Status CheckUniqueIds(const std::vector<FastaRecord>& records);

}  // namespace argserve

#endif  // ARGSERVE_COMMON_FASTA_H_
