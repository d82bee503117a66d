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
  // `metadata` must outlive the rule; `with_evidence`: predictions carry the
  // nearest reference when one aligns.
  CallRule(const ModelMetadata& metadata, bool with_evidence)
      : metadata_(metadata), with_evidence_(with_evidence) {}

  // Fills the class fields and the tier of `prediction` (its length and
  // nearest reference already set) from the probabilities, in the model's
  // class order; `top_k` scores, 0 for all.
  void Fill(absl::Span<const float> probabilities, uint32_t top_k,
            v1::Prediction& prediction) const;

 private:
  const ModelMetadata& metadata_;
  const bool with_evidence_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_CALL_RULE_H_
