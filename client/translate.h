// Translation of coding sequences, by SeqAn (kept apart: its headers are
// heavy to compile).
#ifndef ARGSERVE_CLIENT_TRANSLATE_H_
#define ARGSERVE_CLIENT_TRANSLATE_H_

#include <string>

namespace argserve {

// The protein of a nucleotide sequence (A, C, G, T/U, N; either case) in
// frame 1 under NCBI genetic code 11, one letter per whole codon, '*' for
// stops, X for codons with N.
std::string TranslateTable11(const std::string& nucleotides);

}  // namespace argserve

#endif  // ARGSERVE_CLIENT_TRANSLATE_H_
