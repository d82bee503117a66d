#include "server/call_rule.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace argserve {

void CallRule::Fill(absl::Span<const float> probabilities, uint32_t top_k,
                    v1::Prediction& prediction) const {
  const ModelMetadata& m = metadata_;
  std::vector<int> order(probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return probabilities[a] > probabilities[b];
  });
  const size_t shown =
      top_k == 0 ? order.size() : std::min<size_t>(top_k, order.size());
  const float arg_probability = 1.0f - probabilities[m.nonarg_index];
  const bool too_short = static_cast<int>(prediction.length()) < m.min_residues;
  // With a threshold, P(ARG) decides and the class is the most probable
  // antibiotic class.
  bool is_arg = order[0] != m.nonarg_index;
  if (m.arg_threshold.has_value()) is_arg = arg_probability >= *m.arg_threshold;
  if (too_short) is_arg = false;
  int called = m.nonarg_index;
  if (is_arg) {
    called = order[0] != m.nonarg_index ? order[0] : order[1];
  }
  prediction.set_model_class(m.classes[called]);
  prediction.set_model_is_arg(is_arg);
  v1::Tier tier = v1::TIER_MODEL;
  const EvidenceRule& rule = m.evidence;
  // The class index of a reference the model knows and that spans enough of
  // itself to decide, else -1.
  const auto usable_class = [&](const v1::ReferenceHit& hit) {
    const auto known =
        std::find(m.classes.begin(), m.classes.end(), hit.class_name());
    const bool covered =
        hit.reference_coverage_percent() >=
        static_cast<float>(100.0 * rule.reference_min_coverage);
    return known != m.classes.end() && covered
               ? static_cast<int>(known - m.classes.begin())
               : -1;
  };
  const v1::ReferenceHit* nearest = prediction.has_nearest_reference()
                                        ? &prediction.nearest_reference()
                                        : nullptr;
  // A known non-ARG nearer than every ARG reference counts against an ARG
  // call: the call then needs what one without any ARG reference needs, and
  // the ARG reference behind it, if any, names the class.
  const bool behind_nonarg =
      nearest != nullptr && nearest->class_name() == m.nonarg_class;
  const v1::ReferenceHit* nearest_arg = nearest;
  if (behind_nonarg) {
    nearest_arg = prediction.has_nearest_arg_reference()
                      ? &prediction.nearest_arg_reference()
                      : nullptr;
  }
  const int nearest_class = nearest ? usable_class(*nearest) : -1;
  const int arg_class = nearest_arg ? usable_class(*nearest_arg) : -1;
  const bool novel_enough = !rule.novel_min_arg_probability.has_value() ||
                            arg_probability >= *rule.novel_min_arg_probability;
  if (nearest_class >= 0 &&
      nearest->identity_percent() >=
          static_cast<float>(100.0 * rule.reference_min_identity)) {
    tier = v1::TIER_REFERENCE;
    called = nearest_class;
    is_arg = called != m.nonarg_index;
  } else if (arg_class >= 0 && !too_short &&
             rule.homolog_min_arg_probability.has_value() &&
             arg_probability >= *rule.homolog_min_arg_probability &&
             (novel_enough || !behind_nonarg)) {
    tier = v1::TIER_HOMOLOG;
    called = arg_class;
    is_arg = true;
  } else if (is_arg && with_evidence_ &&
             (nearest == nullptr || behind_nonarg)) {
    if (novel_enough) {
      tier = v1::TIER_NOVEL;
    } else {
      is_arg = false;
      called = m.nonarg_index;
    }
  }
  prediction.set_tier(tier);
  prediction.set_predicted_class(m.classes[called]);
  prediction.set_probability(probabilities[called]);
  prediction.set_is_arg(is_arg);
  prediction.set_arg_probability(arg_probability);
  prediction.set_below_min_residues(too_short);
  prediction.clear_scores();
  for (size_t i = 0; i < shown; ++i) {
    auto* score = prediction.add_scores();
    score->set_class_name(m.classes[order[i]]);
    score->set_probability(probabilities[order[i]]);
  }
}

}  // namespace argserve
