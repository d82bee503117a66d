#include "client/translate.h"

#include <seqan/basic.h>
#include <seqan/modifier.h>
#include <seqan/sequence.h>
#include <seqan/translation.h>

namespace argserve {

std::string TranslateTable11(const std::string& nucleotides) {
  seqan::Dna5String dna;
  for (char c : nucleotides) {
    seqan::appendValue(dna, seqan::Dna5(c == 'U' || c == 'u' ? 'T' : c));
  }
  seqan::Peptide protein;
  seqan::translate(protein, dna, seqan::SINGLE_FRAME,
                   seqan::GeneticCode<seqan::PROKARYOTE>());
  std::string out;
  out.reserve(seqan::length(protein));
  for (auto it = seqan::begin(protein); it != seqan::end(protein); ++it) {
    out.push_back(static_cast<char>(*it));
  }
  return out;
}

}  // namespace argserve
