#include "server/window_merge.h"

#include <algorithm>

namespace argserve {

WindowMerge::WindowMerge(std::vector<int> row_owner, int nonarg_index)
    : row_owner_(std::move(row_owner)), nonarg_index_(nonarg_index) {
  int sequences = 0;
  for (int owner : row_owner_) sequences = std::max(sequences, owner + 1);
  partial_.resize(sequences);
  for (int owner : row_owner_) ++partial_[owner].rows_left;
}

std::optional<WindowMerge::Done> WindowMerge::Add(
    size_t row, const absl::Status& status,
    absl::Span<const float> probabilities) {
  const auto sequence = static_cast<size_t>(row_owner_[row]);
  std::lock_guard<std::mutex> lock(mu_);
  Partial& partial = partial_[sequence];
  if (!status.ok()) {
    if (partial.status.ok()) partial.status = status;
  } else if (partial.status.ok()) {
    const auto p_arg = [&](absl::Span<const float> p) {
      return 1.0f - p[nonarg_index_];
    };
    if (partial.best.empty() || p_arg(probabilities) > p_arg(partial.best))
      partial.best.assign(probabilities.begin(), probabilities.end());
  }
  if (--partial.rows_left > 0) return std::nullopt;
  Done done{sequence, partial.status, std::move(partial.best)};
  return done;
}

}  // namespace argserve
