// Random protein sequences from a fixed seed: unrelated to each other, so a
// test controls exactly what resembles what.
#ifndef ARGSERVE_TESTS_CPP_SUPPORT_RANDOM_PROTEIN_H_
#define ARGSERVE_TESTS_CPP_SUPPORT_RANDOM_PROTEIN_H_

#include <algorithm>
#include <random>
#include <string>

namespace argserve::testing {

inline constexpr char kStandardResidues[] = "ACDEFGHIKLMNPQRSTVWY";

inline std::string RandomProtein(int length, std::mt19937& rng) {
  std::uniform_int_distribution<int> letter(0, 19);
  std::string protein(length, 'A');
  for (char& c : protein) c = kStandardResidues[letter(rng)];
  return protein;
}

// `protein` with every `period`-th residue replaced by a different one.
inline std::string Mutate(std::string protein, int period, std::mt19937& rng) {
  std::uniform_int_distribution<int> letter(0, 19);
  for (size_t i = 0; i < protein.size(); i += period) {
    char replacement = protein[i];
    while (replacement == protein[i])
      replacement = kStandardResidues[letter(rng)];
    protein[i] = replacement;
  }
  return protein;
}

// `protein` with each residue replaced by a different one with probability
// `1 - kept`: a distant homolog, its identical residues scattered at random.
inline std::string Diverged(std::string protein, double kept,
                            std::mt19937& rng) {
  std::uniform_int_distribution<int> letter(0, 19);
  std::bernoulli_distribution replace(1.0 - kept);
  for (char& c : protein) {
    if (!replace(rng)) continue;
    char replacement = c;
    while (replacement == c) replacement = kStandardResidues[letter(rng)];
    c = replacement;
  }
  return protein;
}

inline std::string Shuffled(std::string protein, std::mt19937& rng) {
  std::shuffle(protein.begin(), protein.end(), rng);
  return protein;
}

}  // namespace argserve::testing

#endif  // ARGSERVE_TESTS_CPP_SUPPORT_RANDOM_PROTEIN_H_
