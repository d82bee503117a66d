// FASTA reading: plain or gzip files, or standard input, checked strictly so
// that bad input is reported (file, line, record) before anything is sent.
#ifndef ARGSERVE_COMMON_FASTA_H_
#define ARGSERVE_COMMON_FASTA_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "argserve/common/residues.h"

namespace argserve {

// Where a protein's gene lies on its contig (1-based, inclusive; start <
// end whatever the strand), for proteins of called genes.
struct GeneLocation {
  std::string contig;
  int64_t start = 0;
  int64_t end = 0;
  int strand = 0;  // +1 or -1.
};

struct FastaRecord {
  std::string id;           // Header text up to the first whitespace.
  std::string description;  // Rest of the header line.
  std::string residues;     // Sequence lines joined, whitespace removed.
  std::string source;       // File name ("-" or "<stdin>" for standard input).
  int line = 0;             // Line of the header.
  // Why the record cannot be classified ("FILE:LINE: record 'ID': ..."),
  // when read with BadRecords::kKeep; empty for a good record.
  std::string problem;
  std::optional<GeneLocation> gene;
};

// What reading does with a record whose residues are wrong (an invalid
// character, an internal '*', no sequence): fail (the whole input), or keep
// it with its `problem` set. Structural errors always fail.
enum class BadRecords { kFail, kKeep };

// Reads every record of `path` ("-" reads standard input) and appends them to
// `records`, residues checked against `alphabet` (residues.h) and without
// their final '*'. Errors (INVALID_ARGUMENT, NOT_FOUND) read "FILE:LINE:
// record 'ID': what is wrong".
// An empty input has no records and is no error.
absl::Status ReadFasta(
    const std::string& path, std::vector<FastaRecord>& records,
    const ResidueAlphabet& alphabet = ResidueAlphabet::AnyLetter(),
    BadRecords bad_records = BadRecords::kFail);

// Parses FASTA text already in memory; `source` names it in errors.
absl::Status ParseFasta(
    const std::string& text, const std::string& source,
    std::vector<FastaRecord>& records,
    const ResidueAlphabet& alphabet = ResidueAlphabet::AnyLetter(),
    BadRecords bad_records = BadRecords::kFail);

// Reads a FASTA file (plain or gzip, "-": standard input) a few records at a
// time, so that memory does not grow with the input; the same checks and
// errors as ReadFasta.
class FastaReader {
 public:
  // NOT_FOUND when the file cannot be opened.
  static absl::StatusOr<std::unique_ptr<FastaReader>> Open(
      const std::string& path,
      const ResidueAlphabet& alphabet = ResidueAlphabet::AnyLetter(),
      BadRecords bad_records = BadRecords::kFail);
  ~FastaReader();
  FastaReader(const FastaReader&) = delete;
  FastaReader& operator=(const FastaReader&) = delete;

  // Appends up to `max_records` further records (0: all that are left);
  // fewer only at the end of the input.
  absl::Status Next(size_t max_records, std::vector<FastaRecord>& records);
  bool done() const;

 private:
  struct State;
  explicit FastaReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Checks a record read with a looser alphabet against `alphabet` (the
// model's); the error names the record's file, line and residue.
absl::Status CheckResidues(const FastaRecord& record,
                           const ResidueAlphabet& alphabet);

// Checks ids are unique over all records; the error names both places.
absl::Status CheckUniqueIds(const std::vector<FastaRecord>& records);

}  // namespace argserve

#endif  // ARGSERVE_COMMON_FASTA_H_
