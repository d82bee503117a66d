// The call (docs/model-artifact.md, "The call"): from a model's class
// probabilities to what a prediction says, P(ARG), is_arg and the class.
#ifndef ARGSERVE_SERVER_CALL_RULE_H_
#define ARGSERVE_SERVER_CALL_RULE_H_

#include <cstdint>

#include "absl/types/span.h"
#include "argserve/model/metadata.h"
#include "argserve/v1/argserve.pb.h"

namespace argserve {

class CallRule {
 public:
  // `metadata` must outlive the rule.
  explicit CallRule(const ModelMetadata& metadata) : metadata_(metadata) {}

  // Fills the class fields of `prediction` (its length already set) from the
  // probabilities, in the model's class order; `top_k` scores, 0 for all.
  void Fill(absl::Span<const float> probabilities, uint32_t top_k,
            v1::Prediction& prediction) const;

 private:
  const ModelMetadata& metadata_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_CALL_RULE_H_
