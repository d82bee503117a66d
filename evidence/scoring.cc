// The only file that includes SeqAn: its headers are heavy to compile.
#include "argserve/evidence/scoring.h"

#include <seqan/score.h>

#include <cmath>

namespace argserve {
namespace {

// NCBI BLAST's gapped Karlin-Altschul parameters for BLOSUM62, gaps 11/1.
constexpr double kLambda = 0.267;
constexpr double kK = 0.041;

SubstitutionMatrix MakeBlosum62() {
  SubstitutionMatrix matrix;
  matrix.size = static_cast<int>(seqan::ValueSize<seqan::AminoAcid>::VALUE);
  matrix.scores.resize(static_cast<size_t>(matrix.size) * matrix.size);
  const seqan::Blosum62 blosum;
  for (int i = 0; i < matrix.size; ++i) {
    for (int j = 0; j < matrix.size; ++j) {
      seqan::AminoAcid a, b;
      a.value = static_cast<uint8_t>(i);
      b.value = static_cast<uint8_t>(j);
      matrix.scores[static_cast<size_t>(i) * matrix.size + j] =
          static_cast<int8_t>(seqan::score(blosum, a, b));
    }
  }
  return matrix;
}

}  // namespace

const SubstitutionMatrix& Blosum62() {
  static const SubstitutionMatrix matrix = MakeBlosum62();
  return matrix;
}

std::vector<int8_t> EncodeResidues(absl::string_view residues) {
  std::vector<int8_t> codes(residues.size());
  for (size_t i = 0; i < residues.size(); ++i) {
    codes[i] =
        static_cast<int8_t>(seqan::ordValue(seqan::AminoAcid(residues[i])));
  }
  return codes;
}

bool IsStandardResidue(int8_t code) {
  seqan::AminoAcid letter;
  letter.value = static_cast<uint8_t>(code);
  switch (static_cast<char>(letter)) {
    case 'B':
    case 'J':
    case 'O':
    case 'U':
    case 'X':
    case 'Z':
    case '*':
      return false;
    default:
      return true;
  }
}

double BitScore(int raw_score) {
  return (kLambda * raw_score - std::log(kK)) / std::log(2.0);
}

double EValue(int raw_score, int64_t query_length, int64_t database_length) {
  return kK * static_cast<double>(query_length) *
         static_cast<double>(database_length) * std::exp(-kLambda * raw_score);
}

}  // namespace argserve
