#include "client/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace argserve {
namespace {

using Row = std::map<std::string, std::string>;

v1::Prediction MakePrediction(const std::string& id, float p) {
  v1::Prediction prediction;
  prediction.set_id(id);
  prediction.set_predicted_class("beta-lactam");
  prediction.set_probability(p);
  prediction.set_is_arg(true);
  prediction.set_model_class("beta-lactam");
  prediction.set_model_is_arg(true);
  prediction.set_tier(v1::TIER_NOVEL);
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

// A protein whose close reference decided the call.
v1::Prediction WithReference(v1::Prediction prediction) {
  prediction.set_tier(v1::TIER_REFERENCE);
  v1::ReferenceHit& hit = *prediction.mutable_nearest_reference();
  hit.set_id("blaOXA-48_1_AY236073");
  hit.set_gene("blaOXA-48");
  hit.set_accession("AY236073");
  hit.set_class_name("beta-lactam");
  hit.set_identity_percent(98.5f);
  hit.set_query_coverage_percent(100);
  hit.set_reference_coverage_percent(97.25f);
  hit.set_score(1234);
  hit.set_bit_score(480.5f);
  hit.set_evalue(1e-120);
  hit.set_query_start(1);
  hit.set_query_end(120);
  hit.set_reference_start(3);
  hit.set_reference_end(119);
  hit.set_reference_length(120);
  return prediction;
}

v1::Prediction NonArg(const std::string& id) {
  v1::Prediction prediction = MakePrediction(id, 0.99f);
  prediction.set_predicted_class("nonarg");
  prediction.set_is_arg(false);
  prediction.set_model_class("nonarg");
  prediction.set_model_is_arg(false);
  prediction.set_tier(v1::TIER_MODEL);
  return prediction;
}

RunInfo Run() {
  RunInfo run;
  run.software_version = "9.8.7";
  run.server_version = "9.8.6";
  run.model_name = "m";
  run.model_version = "1";
  run.reference_set_version = "abc123";
  run.input_file_name = "genome";
  return run;
}

// What a writer of `options` makes of `rows`, between Begin(Run()) and End().
std::string Written(
    const OutputOptions& options,
    const std::vector<std::pair<v1::Prediction, FastaRecord>>& rows) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  auto writer = MakeResultWriter(options, out);
  writer->Begin(Run());
  for (const auto& [prediction, record] : rows)
    writer->Write(prediction, record);
  writer->End();
  std::fclose(out);
  std::string text(buffer, size);
  free(buffer);
  return text;
}

std::string Render(OutputFormat format, double min_probability) {
  OutputOptions options;
  options.format = format;
  options.min_probability = min_probability;
  FastaRecord on_contig;
  on_contig.gene = GeneLocation{"contig_7", 1001, 1360, -1};
  v1::Prediction failed;
  failed.set_id("bad");
  failed.set_length(1500);
  failed.mutable_status()->set_code(3);
  failed.mutable_status()->set_message("in.fa:9: record 'bad': too long");
  return Written(options,
                 {{WithReference(MakePrediction("p1", 0.9f)), on_contig},
                  {MakePrediction("p\t2", 0.4f), FastaRecord()},
                  {NonArg("p3"), FastaRecord()},
                  {failed, FastaRecord()}});
}

// One prediction, without a gene location, in `format`.
std::string RenderOne(OutputFormat format, const v1::Prediction& prediction) {
  OutputOptions options;
  options.format = format;
  return Written(options, {{prediction, FastaRecord()}});
}

std::vector<Row> ParseTsv(const std::string& text) {
  std::vector<std::string> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  std::vector<std::string> header = absl::StrSplit(lines.at(0), '\t');
  std::vector<Row> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> fields = absl::StrSplit(lines[i], '\t');
    EXPECT_EQ(fields.size(), header.size()) << lines[i];
    Row row;
    for (size_t c = 0; c < header.size() && c < fields.size(); ++c)
      row[header[c]] = fields[c];
    rows.push_back(row);
  }
  return rows;
}

std::vector<nlohmann::json> ParseLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty()))
    lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(Output, TsvHasHeaderAndOneLinePerPrediction) {
  const std::vector<Row> rows = ParseTsv(Render(OutputFormat::kTsv, 0.5));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].at("id"), "p1");
  EXPECT_EQ(rows[0].at("probability"), "0.9000");
  EXPECT_EQ(rows[0].at("top_k"), "beta-lactam:0.9000,nonarg:0.1000");
  EXPECT_EQ(rows[0].at("arg_probability"), "0.9500");
  EXPECT_EQ(rows[1].at("id"), "p 2");  // A tab in an id cannot split a line.
  EXPECT_EQ(rows[1].at("uncertain"), "true");
  EXPECT_EQ(rows[2].at("is_arg"), "false");
  EXPECT_EQ(rows[0].at("status"), "ok");
}

TEST(Output, EveryFormatReportsARecordThatWasNotClassified) {
  const std::vector<Row> rows = ParseTsv(Render(OutputFormat::kTsv, 0));
  EXPECT_EQ(rows[3].at("id"), "bad");
  EXPECT_EQ(rows[3].at("status"), "error: in.fa:9: record 'bad': too long");
  EXPECT_EQ(rows[3].at("predicted_class"), "");
  EXPECT_EQ(rows[3].at("length"), "1500");
  EXPECT_EQ(rows[3].at("software_version"), "9.8.7");
  const std::vector<nlohmann::json> lines =
      ParseLines(Render(OutputFormat::kJsonLines, 0));
  EXPECT_EQ(lines[3]["status"], "error");
  EXPECT_EQ(lines[3]["error"], "in.fa:9: record 'bad': too long");
  EXPECT_FALSE(lines[3].contains("predicted_class"));
  EXPECT_EQ(lines[0]["status"], "ok");
  const auto doc = nlohmann::json::parse(Render(OutputFormat::kJson, 0));
  EXPECT_EQ(doc["predictions"][3]["status"], "error");
}

TEST(Output, GeneLocationGoesIntoEveryFormat) {
  const std::vector<Row> rows = ParseTsv(Render(OutputFormat::kTsv, 0));
  EXPECT_EQ(rows[0].at("contig"), "contig_7");
  EXPECT_EQ(rows[0].at("gene_start"), "1001");
  EXPECT_EQ(rows[0].at("gene_end"), "1360");
  EXPECT_EQ(rows[0].at("strand"), "-");
  EXPECT_EQ(rows[1].at("contig"), "");
  const std::vector<nlohmann::json> lines =
      ParseLines(Render(OutputFormat::kJsonLines, 0));
  EXPECT_EQ(lines[0]["gene"]["contig"], "contig_7");
  EXPECT_EQ(lines[0]["gene"]["start"], 1001);
  EXPECT_TRUE(lines[1]["gene"].is_null());
  const std::vector<Row> found =
      ParseTsv(Render(OutputFormat::kHamronization, 0));
  EXPECT_EQ(found[0].at("input_sequence_id"), "contig_7");
  EXPECT_EQ(found[0].at("input_gene_start"), "1001");
  EXPECT_EQ(found[0].at("input_gene_stop"), "1360");
  EXPECT_EQ(found[0].at("input_gene_length"), "360");
  EXPECT_EQ(found[0].at("strand_orientation"), "-");
}

TEST(Output, TsvCarriesEvidenceAndVersions) {
  const std::vector<Row> rows = ParseTsv(Render(OutputFormat::kTsv, 0));
  EXPECT_EQ(rows[0].at("tier"), "reference");
  EXPECT_EQ(rows[0].at("reference_id"), "blaOXA-48_1_AY236073");
  EXPECT_EQ(rows[0].at("reference_gene"), "blaOXA-48");
  EXPECT_EQ(rows[0].at("reference_accession"), "AY236073");
  EXPECT_EQ(rows[0].at("reference_class"), "beta-lactam");
  EXPECT_EQ(rows[0].at("identity"), "98.50");
  EXPECT_EQ(rows[0].at("query_coverage"), "100.00");
  EXPECT_EQ(rows[0].at("reference_coverage"), "97.25");
  EXPECT_EQ(rows[0].at("evalue"), "1e-120");
  EXPECT_EQ(rows[1].at("tier"), "novel");
  EXPECT_EQ(rows[1].at("reference_id"), "");
  EXPECT_EQ(rows[1].at("identity"), "");
  EXPECT_EQ(rows[0].at("arg_reference_id"), "");  // the nearest is an ARG
  EXPECT_EQ(rows[3].at("arg_reference_id"), "");  // a record that failed
  for (const Row& row : rows) {
    EXPECT_EQ(row.at("model"), "m:1");
    EXPECT_EQ(row.at("reference_set"), "abc123");
    EXPECT_EQ(row.at("software_version"), "9.8.7");
  }
}

TEST(Output, JsonLinesParseOneObjectPerLine) {
  const std::vector<nlohmann::json> lines =
      ParseLines(Render(OutputFormat::kJsonLines, 0.5));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1]["id"], "p\t2");
  EXPECT_EQ(lines[1]["uncertain"], true);
  EXPECT_EQ(lines[0]["top_k"].size(), 2u);
  EXPECT_NEAR(lines[0]["arg_probability"].get<double>(), 0.95, 1e-6);
  EXPECT_EQ(lines[0]["below_min_residues"], false);
}

TEST(Output, JsonLinesCarryEvidenceAndVersions) {
  const std::vector<nlohmann::json> lines =
      ParseLines(Render(OutputFormat::kJsonLines, 0));
  const nlohmann::json& reference = lines[0]["nearest_reference"];
  EXPECT_EQ(lines[0]["tier"], "reference");
  EXPECT_EQ(reference["gene"], "blaOXA-48");
  EXPECT_EQ(reference["accession"], "AY236073");
  EXPECT_NEAR(reference["identity"].get<double>(), 98.5, 1e-4);
  EXPECT_NEAR(reference["reference_coverage"].get<double>(), 97.25, 1e-4);
  EXPECT_EQ(reference["score"], 1234);
  EXPECT_EQ(reference["reference_start"], 3);
  EXPECT_TRUE(lines[1]["nearest_reference"].is_null());
  EXPECT_TRUE(lines[0]["nearest_arg_reference"].is_null());
  EXPECT_EQ(lines[1]["tier"], "novel");
  EXPECT_EQ(lines[2]["model_is_arg"], false);
  for (const nlohmann::json& line : lines) {
    if (line["status"] != "ok") continue;
    EXPECT_EQ(line["versions"]["software_version"], "9.8.7");
    EXPECT_EQ(line["versions"]["model_version"], "1");
    EXPECT_EQ(line["versions"]["reference_set_version"], "abc123");
  }
}

TEST(Output, JsonIsOneDocument) {
  auto doc = nlohmann::json::parse(Render(OutputFormat::kJson, 0));
  EXPECT_EQ(doc["model"]["name"], "m");
  EXPECT_EQ(doc["versions"]["server_version"], "9.8.6");
  EXPECT_EQ(doc["versions"]["reference_set_version"], "abc123");
  ASSERT_EQ(doc["predictions"].size(), 4u);
  EXPECT_EQ(doc["predictions"][0]["predicted_class"], "beta-lactam");
  EXPECT_NEAR(doc["predictions"][0]["probability"].get<double>(), 0.9, 1e-6);
  EXPECT_EQ(doc["predictions"][0]["nearest_reference"]["id"],
            "blaOXA-48_1_AY236073");
}

TEST(Output, HamronizationHasTheSpecsColumnsAndOneRowPerArg) {
  const std::vector<Row> rows =
      ParseTsv(Render(OutputFormat::kHamronization, 0));
  ASSERT_EQ(rows.size(), 2u);  // The non-ARG p3 and the failed record: none.
  const Row& close = rows[0];
  EXPECT_EQ(close.at("input_file_name"), "genome");
  EXPECT_EQ(close.at("input_sequence_id"), "contig_7");  // On a contig.
  EXPECT_EQ(close.at("gene_symbol"), "blaOXA-48");
  EXPECT_EQ(close.at("gene_name"), "blaOXA-48");
  EXPECT_EQ(close.at("reference_accession"), "AY236073");
  EXPECT_EQ(close.at("reference_database_name"), "argserve:m");
  EXPECT_EQ(close.at("reference_database_version"), "abc123");
  EXPECT_EQ(close.at("analysis_software_name"), "argserve");
  EXPECT_EQ(close.at("analysis_software_version"), "9.8.7");
  EXPECT_EQ(close.at("genetic_variation_type"), "gene_presence_detected");
  EXPECT_EQ(close.at("sequence_identity"), "98.50");
  EXPECT_EQ(close.at("coverage_percentage"), "97.25");
  EXPECT_EQ(close.at("coverage_ratio"), "117/120");
  EXPECT_EQ(close.at("drug_class"), "beta-lactam");
  EXPECT_EQ(close.at("input_protein_length"), "120");
  EXPECT_EQ(close.at("reference_protein_start"), "3");
  EXPECT_EQ(close.at("argserve_tier"), "reference");
  EXPECT_EQ(close.at("argserve_arg_probability"), "0.9500");
  EXPECT_EQ(close.at("argserve_model"), "m:1");
  const Row& novel = rows[1];
  EXPECT_EQ(novel.at("argserve_tier"), "novel");
  EXPECT_EQ(novel.at("gene_symbol"), "beta-lactam_resistance");
  EXPECT_EQ(novel.at("reference_accession"), "");
  EXPECT_EQ(novel.at("sequence_identity"), "");
}

TEST(Output, HomologCallNamesTheClassAndTheDistantReference) {
  v1::Prediction homolog = WithReference(MakePrediction("h1", 0.02f));
  homolog.set_tier(v1::TIER_HOMOLOG);
  homolog.set_model_class("nonarg");
  homolog.set_model_is_arg(false);
  homolog.mutable_nearest_reference()->set_identity_percent(27.5f);
  for (OutputFormat format :
       {OutputFormat::kHamronization, OutputFormat::kTsv}) {
    const std::vector<Row> rows = ParseTsv(RenderOne(format, homolog));
    ASSERT_EQ(rows.size(), 1u);
    const Row& row = rows[0];
    if (format == OutputFormat::kTsv) {
      EXPECT_EQ(row.at("tier"), "homolog");
      EXPECT_EQ(row.at("predicted_class"), "beta-lactam");
      EXPECT_EQ(row.at("model_class"), "nonarg");
      continue;
    }
    EXPECT_EQ(row.at("argserve_tier"), "homolog");
    EXPECT_EQ(row.at("gene_symbol"), "beta-lactam_resistance");
    EXPECT_EQ(row.at("gene_name"),
              "beta-lactam resistance protein (distant homolog of blaOXA-48 "
              "at 27.5% identity, supported by the model)");
    EXPECT_EQ(row.at("reference_accession"), "");
    EXPECT_EQ(row.at("sequence_identity"), "27.50");
  }
}

TEST(Output, ArgReferenceBehindAKnownNonArgIsReportedAndNamed) {
  // A Swiss-Prot relative is nearest (31%); the ARG behind it (26%) is the
  // homolog call's reference.
  v1::Prediction behind = WithReference(MakePrediction("b1", 0.3f));
  behind.set_tier(v1::TIER_HOMOLOG);
  v1::ReferenceHit& relative = *behind.mutable_nearest_reference();
  relative.set_id("P0A9K1");
  relative.set_gene("house");
  relative.set_accession("");
  relative.set_class_name("nonarg");
  relative.set_identity_percent(31);
  v1::ReferenceHit& arg = *behind.mutable_nearest_arg_reference();
  arg = WithReference(MakePrediction("x", 0.3f)).nearest_reference();
  arg.set_identity_percent(26);
  arg.set_reference_coverage_percent(88.5f);
  const std::vector<Row> tsv = ParseTsv(RenderOne(OutputFormat::kTsv, behind));
  ASSERT_EQ(tsv.size(), 1u);
  EXPECT_EQ(tsv[0].at("reference_id"), "P0A9K1");
  EXPECT_EQ(tsv[0].at("reference_class"), "nonarg");
  EXPECT_EQ(tsv[0].at("arg_reference_id"), "blaOXA-48_1_AY236073");
  EXPECT_EQ(tsv[0].at("arg_reference_class"), "beta-lactam");
  EXPECT_EQ(tsv[0].at("arg_identity"), "26.00");
  EXPECT_EQ(tsv[0].at("arg_reference_coverage"), "88.50");
  const std::vector<Row> found =
      ParseTsv(RenderOne(OutputFormat::kHamronization, behind));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].at("gene_name"),
            "beta-lactam resistance protein (distant homolog of blaOXA-48 "
            "at 26.0% identity, supported by the model)");
  EXPECT_EQ(found[0].at("sequence_identity"), "26.00");
  const std::vector<nlohmann::json> lines =
      ParseLines(RenderOne(OutputFormat::kJsonLines, behind));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["nearest_reference"]["id"], "P0A9K1");
  EXPECT_EQ(lines[0]["nearest_arg_reference"]["gene"], "blaOXA-48");
  EXPECT_NEAR(lines[0]["nearest_arg_reference"]["identity"].get<double>(), 26,
              1e-4);
}

TEST(Output, HamronizationInputNameDropsFolderAndSuffixes) {
  EXPECT_EQ(HamronizationInputName("/data/run1/sample.faa.gz"), "sample");
  EXPECT_EQ(HamronizationInputName("genome.fasta"), "genome");
  EXPECT_EQ(HamronizationInputName("reads.txt"), "reads.txt");
  EXPECT_EQ(HamronizationInputName("-"), "stdin");
}

}  // namespace
}  // namespace argserve
