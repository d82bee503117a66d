// Sequences classified in several windows (long-sequence policy "window"):
// the rows a call submits, mapped back to its sequences, and each sequence's
// windows merged into one answer, that of its window with the highest P(ARG).
#ifndef ARGSERVE_SERVER_WINDOW_MERGE_H_
#define ARGSERVE_SERVER_WINDOW_MERGE_H_

#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace argserve {

class WindowMerge {
 public:
  // `row_owner[row]`: the sequence (0-based, in submission order) a row is a
  // window of; rows of one sequence may be anywhere. Empty: one row each.
  WindowMerge(std::vector<int> row_owner, int nonarg_index);

  struct Done {
    size_t sequence = 0;
    absl::Status status;               // The first failed window's, if any.
    std::vector<float> probabilities;  // When OK.
  };

  // One row's result; returns its sequence's answer once all of its rows are
  // in. Safe from several threads.
  std::optional<Done> Add(size_t row, const absl::Status& status,
                          absl::Span<const float> probabilities);

  size_t rows() const { return row_owner_.size(); }

 private:
  struct Partial {
    int rows_left = 0;
    absl::Status status;
    std::vector<float> best;
  };

  const std::vector<int> row_owner_;
  const int nonarg_index_;
  std::mutex mu_;
  std::vector<Partial> partial_;  // Per sequence.
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_WINDOW_MERGE_H_
