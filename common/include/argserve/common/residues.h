// The sequence contract (docs/model-artifact.md, "Input"): the one place that
// says which characters a protein sequence may hold. Residues are letters of
// the model's alphabet, in either case; one final '*' (a translated stop codon)
// is dropped; any other '*' is an internal stop codon and refused.
#ifndef ARGSERVE_COMMON_RESIDUES_H_
#define ARGSERVE_COMMON_RESIDUES_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace argserve {

// What is wrong with a sequence, and where.
struct ResidueProblem {
  enum class Kind { kEmpty, kInvalidCharacter, kInternalStop };
  Kind kind = Kind::kEmpty;
  size_t index = 0;  // 0-based position of the offending character.
  unsigned char byte = 0;

  // "empty sequence", "invalid character '1'", "internal stop codon '*'"; the
  // caller says where (position, or file, line and column).
  std::string What() const;
};

class ResidueAlphabet {
 public:
  // `letters`: the accepted residue letters (model.json "residues"), either
  // case.
  explicit ResidueAlphabet(std::string_view letters);

  // Every ASCII letter: the shape of a protein sequence before the model that
  // will read it, and so its alphabet, is known.
  static ResidueAlphabet AnyLetter();

  bool Accepts(unsigned char byte) const { return accepted_[byte]; }
  const std::string& letters() const { return letters_; }
  // For messages: "letters" for AnyLetter(), else the letters themselves.
  std::string Allowed() const;

  // Applies the contract to one sequence. On success returns nothing and
  // `residues` no longer holds its final '*'.
  std::optional<ResidueProblem> Check(std::string_view& residues) const;

 private:
  std::string letters_;
  std::array<bool, 256> accepted_{};
};

}  // namespace argserve

#endif  // ARGSERVE_COMMON_RESIDUES_H_
