#include "argserve/model/torch_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace argserve {
namespace {

using ::testing::HasSubstr;

TEST(TorchOptions, ParsesWhatItNames) {
  for (Precision value : {Precision::kFp32, Precision::kBf16})
    EXPECT_EQ(*ParsePrecision(NameOf(value)), value);
  for (GraphPasses value :
       {GraphPasses::kNone, GraphPasses::kFreeze, GraphPasses::kOptimize})
    EXPECT_EQ(*ParseGraphPasses(NameOf(value)), value);
  for (GradMode value : {GradMode::kInference, GradMode::kNoGrad})
    EXPECT_EQ(*ParseGradMode(NameOf(value)), value);
  for (Executor value : {Executor::kProfiling, Executor::kLegacy})
    EXPECT_EQ(*ParseExecutor(NameOf(value)), value);
  EXPECT_EQ(NameOf(Precision::kBf16), "bf16");
  EXPECT_EQ(NameOf(GraphPasses::kOptimize), "optimize");
}

TEST(TorchOptions, UnknownValuesAreNamedWithTheChoices) {
  auto graph_passes = ParseGraphPasses("fold");
  ASSERT_FALSE(graph_passes.ok());
  EXPECT_EQ(graph_passes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(graph_passes.status().message()),
              HasSubstr("graph passes must be none, freeze or optimize, not "
                        "'fold'"));
  EXPECT_THAT(std::string(ParseGradMode("enabled").status().message()),
              HasSubstr("grad mode must be inference or no_grad"));
  EXPECT_THAT(std::string(ParseExecutor("fast").status().message()),
              HasSubstr("executor must be profiling or legacy"));
  EXPECT_THAT(std::string(ParsePrecision("fp16").status().message()),
              HasSubstr("precision must be fp32 or bf16, not 'fp16'"));
}

}  // namespace
}  // namespace argserve
