#include "argserve/model/tokenizer.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"

namespace argserve {

Tokenizer::Tokenizer(const ModelMetadata& metadata)
    : residues_(metadata.residues),
      cls_(metadata.cls_token),
      eos_(metadata.eos_token),
      pad_(metadata.pad_token),
      max_residues_(metadata.max_residues) {
  for (char residue : residues_.letters()) {
    auto it = std::find(metadata.alphabet.begin(), metadata.alphabet.end(),
                        std::string(1, residue));
    if (it == metadata.alphabet.end())
      continue;  // ParseModelMetadata already rejects this.
    auto token = static_cast<int16_t>(it - metadata.alphabet.begin());
    const auto upper = static_cast<unsigned char>(residue);
    token_of_byte_[upper] = token;
    token_of_byte_[static_cast<unsigned char>(std::tolower(upper))] = token;
  }
}

absl::Status Tokenizer::Tokenize(std::string_view residues,
                                 LongSequencePolicy policy,
                                 TokenizedSequence& out) const {
  // Every character is checked, also beyond a truncation point, so bad input
  // never passes silently.
  if (auto problem = residues_.Check(residues)) {
    if (problem->kind == ResidueProblem::Kind::kEmpty)
      return absl::InvalidArgumentError(problem->What());
    return absl::InvalidArgumentError(
        absl::StrCat(problem->What(), " at position ", problem->index + 1));
  }
  out.residues = static_cast<int>(residues.size());
  out.truncated = false;
  out.more_windows.clear();
  const size_t max = static_cast<size_t>(max_residues_);
  size_t keep = residues.size();
  if (residues.size() > max) {
    if (policy == LongSequencePolicy::kReject) {
      return absl::InvalidArgumentError(absl::StrCat(
          residues.size(), " residues, more than the model's maximum of ",
          max_residues_));
    }
    keep = max;
    out.truncated = policy == LongSequencePolicy::kTruncate;
  }
  const auto encode = [&](size_t start, size_t length,
                          std::vector<int64_t>& tokens) {
    tokens.clear();
    tokens.reserve(length + 2);
    tokens.push_back(cls_);
    for (size_t i = start; i < start + length; ++i)
      tokens.push_back(token_of_byte_[static_cast<unsigned char>(residues[i])]);
    tokens.push_back(eos_);
  };
  encode(0, keep, out.tokens);
  if (policy == LongSequencePolicy::kWindow && residues.size() > max) {
    const size_t step = std::max<size_t>(1, max / 2);
    for (size_t start = step;; start += step) {
      const size_t last = residues.size() - max;
      out.more_windows.emplace_back();
      encode(std::min(start, last), max, out.more_windows.back());
      if (start >= last) break;
    }
  }
  return absl::OkStatus();
}

}  // namespace argserve
