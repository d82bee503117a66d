// ESM tokenization, identical to training/argtrain/alphabet.py
// (docs/model-artifact.md).
#ifndef ARGSERVE_MODEL_TOKENIZER_H_
#define ARGSERVE_MODEL_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "argserve/common/residues.h"
#include "argserve/model/metadata.h"

namespace argserve {

struct TokenizedSequence {
  std::vector<int64_t> tokens;  // <cls> residues <eos>
  int residues = 0;  // Residues in the input, after dropping a trailing '*'.
  bool truncated = false;  // Only the first max_residues residues were kept.
  // kWindow: the windows after the first (which is `tokens`), each <cls>
  // residues <eos>; empty when the sequence fits.
  std::vector<std::vector<int64_t>> more_windows;
};

// What happens to sequences longer than the model's max_residues: refused;
// cut to the first max_residues; or split into windows of max_residues that
// overlap by half (the last one ends with the sequence), each classified.
enum class LongSequencePolicy { kReject, kTruncate, kWindow };

class Tokenizer {
 public:
  explicit Tokenizer(const ModelMetadata& metadata);

  // Tokenizes one sequence. Errors (INVALID_ARGUMENT) name the offending
  // character and its 1-based position, or the length limit; the caller adds
  // which sequence it was.
  absl::Status Tokenize(std::string_view residues, LongSequencePolicy policy,
                        TokenizedSequence& out) const;

  int max_residues() const { return max_residues_; }
  const ResidueAlphabet& residues() const { return residues_; }
  int64_t pad_token() const { return pad_; }

 private:
  ResidueAlphabet residues_;
  std::array<int16_t, 256> token_of_byte_{};  // Valid for accepted residues.
  int64_t cls_ = 0;
  int64_t eos_ = 0;
  int64_t pad_ = 0;
  int max_residues_ = 0;
};

}  // namespace argserve

#endif  // ARGSERVE_MODEL_TOKENIZER_H_
