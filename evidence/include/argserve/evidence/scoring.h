// The substitution matrix of the alignments: BLOSUM62 as SeqAn defines it,
// over SeqAn's amino-acid alphabet.
#ifndef ARGSERVE_EVIDENCE_SCORING_H_
#define ARGSERVE_EVIDENCE_SCORING_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace argserve {

struct SubstitutionMatrix {
  int size = 0;                // Letters of the alphabet.
  std::vector<int8_t> scores;  // Row-major [size, size].
};

const SubstitutionMatrix& Blosum62();

// Letter codes for the matrix (either case; unknown letters as X).
std::vector<int8_t> EncodeResidues(absl::string_view residues);

// Whether a code is one of the 20 standard amino acids (the k-mer index
// skips the rest).
bool IsStandardResidue(int8_t code);

// Karlin-Altschul statistics of BLOSUM62 with gap costs 11/1 (NCBI BLAST's
// gapped values): bit score and E-value in a search space of m x n residues.
double BitScore(int raw_score);
double EValue(int raw_score, int64_t query_length, int64_t database_length);

}  // namespace argserve

#endif  // ARGSERVE_EVIDENCE_SCORING_H_
