#include "client/output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace argserve {
namespace {

using nlohmann::json;

bool Uncertain(const v1::Prediction& p, const OutputOptions& options) {
  return p.probability() < options.min_probability;
}

void Put(std::FILE* out, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), out);
}

json ToJson(const v1::Prediction& p, const OutputOptions& options) {
  json scores = json::array();
  for (const auto& score : p.scores()) {
    scores.push_back(
        {{"class", score.class_name()}, {"probability", score.probability()}});
  }
  return json{{"id", p.id()},
              {"predicted_class", p.predicted_class()},
              {"probability", p.probability()},
              {"is_arg", p.is_arg()},
              {"uncertain", Uncertain(p, options)},
              {"length", p.length()},
              {"truncated", p.truncated()},
              {"top_k", scores},
              {"arg_probability", p.arg_probability()},
              {"below_min_residues", p.below_min_residues()}};
}

// Ids come from FASTA headers: a tab or newline in one would break the TSV line
// structure.
std::string TsvField(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

class TsvWriter final : public ResultWriter {
 public:
  TsvWriter(OutputOptions options, std::FILE* out)
      : options_(options), out_(out) {}
  void Begin(const std::string& /*model_name*/,
             const std::string& /*model_version*/) override {
    Put(out_,
        "id\tpredicted_class\tprobability\tis_"
        "arg\tuncertain\tlength\ttruncated\ttop_k\targ_probability\tbelow_min_"
        "residues\n");
  }
  void Write(const v1::Prediction& p) override {
    std::string top;
    for (const auto& score : p.scores()) {
      absl::StrAppend(&top, top.empty() ? "" : ",", score.class_name(), ":",
                      absl::StrFormat("%.4f", score.probability()));
    }
    Put(out_,
        absl::StrCat(TsvField(p.id()), "\t", p.predicted_class(), "\t",
                     absl::StrFormat("%.4f", p.probability()), "\t",
                     p.is_arg() ? "true" : "false", "\t",
                     Uncertain(p, options_) ? "true" : "false", "\t",
                     p.length(), "\t", p.truncated() ? "true" : "false", "\t",
                     top, "\t", absl::StrFormat("%.4f", p.arg_probability()),
                     "\t", p.below_min_residues() ? "true" : "false", "\n"));
  }
  void End() override {}

 private:
  const OutputOptions options_;
  std::FILE* const out_;
};

class JsonLinesWriter final : public ResultWriter {
 public:
  JsonLinesWriter(OutputOptions options, std::FILE* out)
      : options_(options), out_(out) {}
  void Begin(const std::string& /*model_name*/,
             const std::string& /*model_version*/) override {}
  void Write(const v1::Prediction& p) override {
    Put(out_, ToJson(p, options_).dump() + "\n");
  }
  void End() override {}

 private:
  const OutputOptions options_;
  std::FILE* const out_;
};

// One JSON document; predictions are streamed into its array rather than held
// in memory.
class JsonWriter final : public ResultWriter {
 public:
  JsonWriter(OutputOptions options, std::FILE* out)
      : options_(options), out_(out) {}
  void Begin(const std::string& name, const std::string& version) override {
    Put(out_, absl::StrCat("{\"model\": ",
                           json{{"name", name}, {"version", version}}.dump(),
                           ",\n \"predictions\": ["));
  }
  void Write(const v1::Prediction& p) override {
    Put(out_,
        absl::StrCat(first_ ? "\n  " : ",\n  ", ToJson(p, options_).dump()));
    first_ = false;
  }
  void End() override { Put(out_, "\n ]\n}\n"); }

 private:
  const OutputOptions options_;
  std::FILE* const out_;
  bool first_ = true;
};

}  // namespace

std::unique_ptr<ResultWriter> MakeResultWriter(const OutputOptions& options,
                                               std::FILE* out) {
  switch (options.format) {
    case OutputFormat::kTsv:
      return std::make_unique<TsvWriter>(options, out);
    case OutputFormat::kJsonLines:
      return std::make_unique<JsonLinesWriter>(options, out);
    case OutputFormat::kJson:
      return std::make_unique<JsonWriter>(options, out);
  }
  return nullptr;
}

}  // namespace argserve
