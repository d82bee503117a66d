#include "argserve/model/torch_options.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"

namespace argserve {
namespace {

template <typename Enum, size_t N>
using Names = std::array<std::pair<Enum, const char*>, N>;

constexpr Names<Precision, 2> kPrecisions{
    {{Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}}};
constexpr Names<GraphPasses, 3> kGraphPasses{
    {{GraphPasses::kNone, "none"},
     {GraphPasses::kFreeze, "freeze"},
     {GraphPasses::kOptimize, "optimize"}}};
constexpr Names<GradMode, 2> kGradModes{
    {{GradMode::kInference, "inference"}, {GradMode::kNoGrad, "no_grad"}}};
constexpr Names<Executor, 2> kExecutors{
    {{Executor::kProfiling, "profiling"}, {Executor::kLegacy, "legacy"}}};

// "<what> must be a, b or c, not 'x'" when `text` names none of them.
template <typename Enum, size_t N>
absl::StatusOr<Enum> Parse(const char* what, const Names<Enum, N>& names,
                           const std::string& text) {
  std::string listed;
  for (size_t i = 0; i < N; ++i) {
    if (text == names[i].second) return names[i].first;
    if (i > 0) listed += i + 1 == N ? " or " : ", ";
    listed += names[i].second;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " must be ", listed, ", not '", text, "'"));
}

template <typename Enum, size_t N>
std::string Name(const Names<Enum, N>& names, Enum value) {
  for (const auto& [known, name] : names) {
    if (known == value) return name;
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<Precision> ParsePrecision(const std::string& text) {
  return Parse("precision", kPrecisions, text);
}
absl::StatusOr<GraphPasses> ParseGraphPasses(const std::string& text) {
  return Parse("graph passes", kGraphPasses, text);
}
absl::StatusOr<GradMode> ParseGradMode(const std::string& text) {
  return Parse("grad mode", kGradModes, text);
}
absl::StatusOr<Executor> ParseExecutor(const std::string& text) {
  return Parse("executor", kExecutors, text);
}
std::string NameOf(Precision value) { return Name(kPrecisions, value); }
std::string NameOf(GraphPasses value) { return Name(kGraphPasses, value); }
std::string NameOf(GradMode value) { return Name(kGradModes, value); }
std::string NameOf(Executor value) { return Name(kExecutors, value); }

}  // namespace argserve
