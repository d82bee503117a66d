#include "argserve/model/metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "tests/cpp/support/test_metadata.h"

namespace argserve {
namespace {

using ::testing::HasSubstr;

// Each of `bad` (extra model.json keys) is refused with a message naming
// `key`.
void ExpectRejectedNaming(std::initializer_list<const char*> bad,
                          const std::string& key) {
  for (const char* extra : bad) {
    auto rejected = ParseModelMetadata(testing::TestModelJson(100, extra));
    ASSERT_FALSE(rejected.ok()) << extra;
    EXPECT_THAT(std::string(rejected.status().message()), HasSubstr(key));
  }
}

TEST(ModelMetadata, ParsesTheContract) {
  auto m = ParseModelMetadata(testing::TestModelJson(1022));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->format, "argserve-model/1");
  EXPECT_THAT(m->classes, ::testing::ElementsAre("aminoglycoside",
                                                 "beta-lactam", "nonarg"));
  EXPECT_EQ(m->nonarg_index, 2);
  EXPECT_EQ(m->alphabet.size(), 33u);
  EXPECT_EQ(m->cls_token, 0);
  EXPECT_EQ(m->pad_token, 1);
  EXPECT_EQ(m->eos_token, 2);
  EXPECT_EQ(m->mask_token, 32);
  EXPECT_EQ(m->max_residues, 1022);
  EXPECT_EQ(m->num_layers, 2);
  EXPECT_EQ(m->backbone_source, "random");
}

TEST(ModelMetadata, ReadsTheCalibration) {
  auto plain = ParseModelMetadata(testing::TestModelJson());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->arg_threshold.has_value());
  EXPECT_EQ(plain->min_residues, 0);
  auto m = ParseModelMetadata(testing::TestModelJson(
      100,
      R"("calibration": {"temperature": 1.7, "arg_threshold": 0.82, "min_residues": 50})"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(*m->arg_threshold, 0.82);
  EXPECT_EQ(m->min_residues, 50);
  ExpectRejectedNaming({R"("calibration": {"arg_threshold": 1.5})",
                        R"("calibration": {"arg_threshold": "high"})",
                        R"("calibration": {"min_residues": -3})"},
                       "calibration.");
}

TEST(ModelMetadata, ReadsTheEvidenceRule) {
  auto plain = ParseModelMetadata(testing::TestModelJson());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_DOUBLE_EQ(plain->evidence.reference_min_identity, 0.8);
  EXPECT_FALSE(plain->evidence.homolog_min_arg_probability.has_value());
  EXPECT_FALSE(plain->evidence.novel_min_arg_probability.has_value());
  auto m = ParseModelMetadata(testing::TestModelJson(
      100, R"("evidence": {"reference_min_identity": 0.35,
                           "homolog_min_arg_probability": 0.05,
                           "novel_min_arg_probability": 0.99})"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->evidence.reference_min_identity, 0.35);
  EXPECT_DOUBLE_EQ(*m->evidence.homolog_min_arg_probability, 0.05);
  EXPECT_DOUBLE_EQ(*m->evidence.novel_min_arg_probability, 0.99);
  ExpectRejectedNaming({R"("evidence": {"homolog_min_arg_probability": 1.2})",
                        R"("evidence": {"novel_min_arg_probability": "high"})",
                        R"("evidence": {"reference_min_identity": -0.1})"},
                       "evidence.");
}

TEST(ModelMetadata, RejectsNonJson) {
  auto m = ParseModelMetadata("not json {");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()),
              HasSubstr("not a JSON object"));
}

TEST(ModelMetadata, NamesTheMissingKey) {
  std::string json = testing::TestModelJson();
  json.replace(json.find("\"max_residues\""), 14, "\"max_residuez\"");
  auto m = ParseModelMetadata(json);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("'max_residues'"));
}

TEST(ModelMetadata, RejectsOtherFormats) {
  std::string json = testing::TestModelJson();
  json.replace(json.find("argserve-model/1"), 16, "argserve-model/9");
  auto m = ParseModelMetadata(json);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()),
              HasSubstr("unsupported format 'argserve-model/9'"));
}

TEST(ModelMetadata, NonargClassMustBeAClass) {
  std::string json = testing::TestModelJson();
  json.replace(json.find(R"("nonarg_class": "nonarg")"), 24,
               R"("nonarg_class": "other")");
  auto m = ParseModelMetadata(json);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()),
              HasSubstr("nonarg_class 'other'"));
}

}  // namespace
}  // namespace argserve
