#include "client/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "nlohmann/json.hpp"

namespace argserve {
namespace {

v1::Prediction MakePrediction(const std::string& id, float p) {
  v1::Prediction prediction;
  prediction.set_id(id);
  prediction.set_predicted_class("beta-lactam");
  prediction.set_probability(p);
  prediction.set_is_arg(true);
  prediction.set_length(120);
  prediction.set_arg_probability(p + 0.05f);
  prediction.set_below_min_residues(id == "short");
  auto* s1 = prediction.add_scores();
  s1->set_class_name("beta-lactam");
  s1->set_probability(p);
  auto* s2 = prediction.add_scores();
  s2->set_class_name("nonarg");
  s2->set_probability(1 - p);
  return prediction;
}

std::string Render(OutputFormat format, double min_probability) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  OutputOptions options;
  options.format = format;
  options.min_probability = min_probability;
  auto writer = MakeResultWriter(options, out);
  writer->Begin("m", "1");
  writer->Write(MakePrediction("p1", 0.9f));
  writer->Write(MakePrediction("p\t2", 0.4f));
  writer->End();
  std::fclose(out);
  std::string text(buffer, size);
  free(buffer);
  return text;
}

TEST(Output, TsvHasHeaderAndOneLinePerPrediction) {
  const std::string text = Render(OutputFormat::kTsv, 0.5);
  EXPECT_EQ(text,
            "id\tpredicted_class\tprobability\tis_"
            "arg\tuncertain\tlength\ttruncated\ttop_k\targ_probability\tbelow_"
            "min_residues\n"
            "p1\tbeta-lactam\t0.9000\ttrue\tfalse\t120\tfalse\tbeta-lactam:0."
            "9000,nonarg:0.1000\t0.9500\tfalse\n"
            "p "
            "2\tbeta-lactam\t0.4000\ttrue\ttrue\t120\tfalse\tbeta-lactam:0."
            "4000,nonarg:0.6000\t0.4500\tfalse\n");
}

TEST(Output, JsonLinesParseOneObjectPerLine) {
  const std::string text = Render(OutputFormat::kJsonLines, 0.5);
  std::vector<nlohmann::json> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    lines.push_back(nlohmann::json::parse(text.substr(start, end - start)));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["id"], "p\t2");
  EXPECT_EQ(lines[1]["uncertain"], true);
  EXPECT_EQ(lines[0]["top_k"].size(), 2u);
  EXPECT_NEAR(lines[0]["arg_probability"].get<double>(), 0.95, 1e-6);
  EXPECT_EQ(lines[0]["below_min_residues"], false);
}

TEST(Output, JsonIsOneDocument) {
  auto doc = nlohmann::json::parse(Render(OutputFormat::kJson, 0));
  EXPECT_EQ(doc["model"]["name"], "m");
  ASSERT_EQ(doc["predictions"].size(), 2u);
  EXPECT_EQ(doc["predictions"][0]["predicted_class"], "beta-lactam");
  EXPECT_NEAR(doc["predictions"][0]["probability"].get<double>(), 0.9, 1e-6);
}

}  // namespace
}  // namespace argserve
