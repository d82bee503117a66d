// What argserve-cli classifies, from what it was given: protein records as
// read, coding sequences translated (NCBI table 11), or the genes Prodigal
// calls on contigs; and the checks that decide, per record, whether it can be
// sent (docs: README "Client", "Input types").
#ifndef ARGSERVE_CLIENT_INPUT_H_
#define ARGSERVE_CLIENT_INPUT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "argserve/common/fasta.h"
#include "argserve/v1/argserve.pb.h"

namespace argserve {

enum class InputType { kProtein, kCds, kContigs };

// Prodigal's gene-calling procedure: "single" (one genome, trained on it) or
// "meta" (metagenomes and short or mixed inputs).
enum class GeneCalling { kSingle, kMeta };

// Shares above this of A, C, G, T, U, N in a record read as protein mean
// it is nucleotide.
inline constexpr double kNucleotideShare = 0.9;

// Refuses (INVALID_ARGUMENT) the first protein record that looks like
// nucleotide, naming it and the flag to use; short records are not judged.
absl::Status CheckNotNucleotide(const std::vector<FastaRecord>& records);

// Translates each coding sequence in place with NCBI table 11: a first codon
// that is one of the table's starts becomes M, one final stop codon is
// dropped. Records that are not a coding sequence (length not a multiple of
// 3, an internal stop, a letter that is not a nucleotide) get their problem.
void TranslateCodingSequences(std::vector<FastaRecord>& records);

// Calls genes on the contigs with Prodigal and returns their proteins, each
// with its contig, start, end and strand; ids are Prodigal's
// (CONTIG_N). Errors name Prodigal's complaint.
absl::StatusOr<std::vector<FastaRecord>> CallGenes(
    const std::vector<FastaRecord>& contigs, GeneCalling mode,
    const std::string& prodigal = "prodigal");

// Marks records the model cannot take: residues outside its alphabet, and,
// when `reject_long`, more residues than `max_residues`.
void CheckAgainstModel(std::vector<FastaRecord>& records,
                       const v1::ModelInfo& info, bool reject_long);

// The prediction written for a record that was not classified.
v1::Prediction RecordFailure(const FastaRecord& record);

// What to read, and how.
struct InputSpec {
  std::vector<std::string> seqs;   // --seq ID=RESIDUES or RESIDUES.
  std::vector<std::string> files;  // FASTA files; "-": standard input.
  InputType type = InputType::kProtein;
  GeneCalling gene_calling = GeneCalling::kMeta;
  BadRecords bad_records = BadRecords::kKeep;
};

// The input, prepared as its type says (translated, genes called), handed
// out a chunk at a time so that memory stays flat however long it is. Ids
// must be unique over the whole input.
class InputReader {
 public:
  explicit InputReader(InputSpec spec);

  // Appends the next chunk (at most about `chunk_records` records; the whole
  // input for single-genome gene calling). Errors are the run's end: what
  // is wrong, where.
  absl::Status Next(size_t chunk_records, std::vector<FastaRecord>& chunk);
  bool done() const { return done_; }

 private:
  absl::Status ReadRaw(size_t chunk_records, std::vector<FastaRecord>& raw);
  absl::Status Prepare(std::vector<FastaRecord>& chunk);

  const InputSpec spec_;
  size_t next_file_ = 0;
  bool seqs_read_ = false;
  bool done_ = false;
  std::unique_ptr<FastaReader> reader_;
  // Each id's 64-bit fingerprint -> where it was first seen (source index
  // << 32 | line): a few bytes per record, whatever the ids' length.
  absl::flat_hash_map<uint64_t, uint64_t> seen_;
  std::vector<std::string> sources_;
};

}  // namespace argserve

#endif  // ARGSERVE_CLIENT_INPUT_H_
