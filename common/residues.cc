#include "argserve/common/residues.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "argserve/common/describe.h"

namespace argserve {

std::string ResidueProblem::What() const {
  switch (kind) {
    case Kind::kEmpty:
      return "empty sequence";
    case Kind::kInternalStop:
      return "internal stop codon '*'";
    case Kind::kInvalidCharacter:
      break;
  }
  return absl::StrCat("invalid character ", DescribeByte(byte));
}

ResidueAlphabet::ResidueAlphabet(std::string_view letters) {
  for (char letter : letters) {
    const auto byte = static_cast<unsigned char>(letter);
    if (std::isalpha(byte) == 0) continue;  // Only letters are residues.
    const auto upper = static_cast<unsigned char>(std::toupper(byte));
    if (accepted_[upper]) continue;
    letters_.push_back(static_cast<char>(upper));
    accepted_[upper] = true;
    accepted_[static_cast<unsigned char>(std::tolower(byte))] = true;
  }
}

namespace {
constexpr char kAllLetters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
}  // namespace

ResidueAlphabet ResidueAlphabet::AnyLetter() {
  return ResidueAlphabet(kAllLetters);
}

std::string ResidueAlphabet::Allowed() const {
  return letters_ == kAllLetters ? "letters" : letters_;
}

std::optional<ResidueProblem> ResidueAlphabet::Check(
    std::string_view& residues) const {
  std::string_view body = residues;
  if (!body.empty() && body.back() == '*') body.remove_suffix(1);
  if (body.empty()) return ResidueProblem{ResidueProblem::Kind::kEmpty, 0, 0};
  for (size_t i = 0; i < body.size(); ++i) {
    const auto byte = static_cast<unsigned char>(body[i]);
    if (accepted_[byte]) continue;
    return ResidueProblem{byte == '*' ? ResidueProblem::Kind::kInternalStop
                                      : ResidueProblem::Kind::kInvalidCharacter,
                          i, byte};
  }
  residues = body;
  return std::nullopt;
}

}  // namespace argserve
