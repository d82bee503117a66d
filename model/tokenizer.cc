#include "argserve/model/tokenizer.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace argserve {

Tokenizer::Tokenizer(const ModelMetadata& metadata)
    : cls_(metadata.cls_token),
      eos_(metadata.eos_token),
      pad_(metadata.pad_token),
      max_residues_(metadata.max_residues) {
  token_of_byte_.fill(-1);
  for (char residue : metadata.residues) {
    auto it = std::find(metadata.alphabet.begin(), metadata.alphabet.end(),
                        std::string(1, residue));
    if (it == metadata.alphabet.end())
      continue;  // ParseModelMetadata already rejects this.
    auto token = static_cast<int16_t>(it - metadata.alphabet.begin());
    auto upper = static_cast<unsigned char>(
        std::toupper(static_cast<unsigned char>(residue)));
    auto lower = static_cast<unsigned char>(
        std::tolower(static_cast<unsigned char>(residue)));
    token_of_byte_[upper] = token;
    token_of_byte_[lower] = token;
  }
}

absl::Status Tokenizer::Tokenize(std::string_view residues,
                                 LongSequencePolicy policy,
                                 TokenizedSequence& out) const {
  if (!residues.empty() && residues.back() == '*') residues.remove_suffix(1);
  if (residues.empty()) return absl::InvalidArgumentError("empty sequence");
  out.residues = static_cast<int>(residues.size());
  out.truncated = false;
  size_t keep = residues.size();
  if (residues.size() > static_cast<size_t>(max_residues_)) {
    if (policy == LongSequencePolicy::kReject) {
      return absl::InvalidArgumentError(absl::StrCat(
          residues.size(), " residues, more than the model's maximum of ",
          max_residues_));
    }
    keep = max_residues_;
    out.truncated = true;
  }
  out.tokens.clear();
  out.tokens.reserve(keep + 2);
  out.tokens.push_back(cls_);
  // Every character is checked, also beyond a truncation point, so bad input
  // never passes silently.
  for (size_t i = 0; i < residues.size(); ++i) {
    auto byte = static_cast<unsigned char>(residues[i]);
    int16_t token = token_of_byte_[byte];
    if (token < 0) {
      if (byte == '*') {
        return absl::InvalidArgumentError(
            absl::StrCat("internal stop codon '*' at position ", i + 1));
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid character ", DescribeByte(byte), " at position ", i + 1));
    }
    if (i < keep) out.tokens.push_back(token);
  }
  out.tokens.push_back(eos_);
  return absl::OkStatus();
}

std::string DescribeByte(unsigned char byte) {
  if (byte >= 0x21 && byte < 0x7f)
    return absl::StrCat("'", std::string(1, static_cast<char>(byte)), "'");
  if (byte == ' ') return "' ' (space)";
  return absl::StrFormat("\\x%02x", byte);
}

std::string DescribeId(std::string_view id) {
  constexpr size_t kMaxShown = 80;
  std::string shown;
  for (size_t i = 0; i < id.size() && i < kMaxShown; ++i) {
    auto byte = static_cast<unsigned char>(id[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\'' && byte != '\\') {
      shown.push_back(static_cast<char>(byte));
    } else {
      shown += absl::StrFormat("\\x%02x", byte);
    }
  }
  if (id.size() > kMaxShown) shown += "...";
  return absl::StrCat("'", shown, "'");
}

}  // namespace argserve
