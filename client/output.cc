#include "client/output.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace argserve {
namespace {

using nlohmann::json;

// Columns of the TSV format.
constexpr size_t kTsvColumns = 34;
// The columns before "status": the call, the reference and the versions.
constexpr size_t kColumnsBeforeStatus = 24;

bool Uncertain(const v1::Prediction& p, const OutputOptions& options) {
  return p.probability() < options.min_probability;
}

void Put(std::FILE* out, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), out);
}

std::string Fixed(double value, int digits) {
  return absl::StrFormat("%.*f", digits, value);
}

std::string Bool(bool value) { return value ? "true" : "false"; }

json ReferenceJson(bool present, const v1::ReferenceHit& r) {
  if (!present) return nullptr;
  return json{{"id", r.id()},
              {"gene", r.gene()},
              {"accession", r.accession()},
              {"class", r.class_name()},
              {"identity", r.identity_percent()},
              {"query_coverage", r.query_coverage_percent()},
              {"reference_coverage", r.reference_coverage_percent()},
              {"score", r.score()},
              {"bit_score", r.bit_score()},
              {"evalue", r.evalue()},
              {"query_start", r.query_start()},
              {"query_end", r.query_end()},
              {"reference_start", r.reference_start()},
              {"reference_end", r.reference_end()},
              {"reference_length", r.reference_length()}};
}

json VersionsJson(const RunInfo& run) {
  return json{{"software", "argserve"},
              {"software_version", run.software_version},
              {"server_version", run.server_version},
              {"model", run.model_name},
              {"model_version", run.model_version},
              {"reference_set_version", run.reference_set_version}};
}

bool Failed(const v1::Prediction& p) {
  return p.has_status() && p.status().code() != 0;
}

// "ok", or why the record was not classified.
std::string StatusText(const v1::Prediction& p) {
  return Failed(p) ? absl::StrCat("error: ", p.status().message()) : "ok";
}

std::string Strand(int strand) {
  return strand > 0 ? "+" : strand < 0 ? "-" : "";
}

json GeneJson(const FastaRecord& record) {
  if (!record.gene) return nullptr;
  return json{{"contig", record.gene->contig},
              {"start", record.gene->start},
              {"end", record.gene->end},
              {"strand", Strand(record.gene->strand)}};
}

json ToJson(const v1::Prediction& p, const OutputOptions& options,
            const FastaRecord& record) {
  if (Failed(p)) {
    return json{{"id", p.id()},
                {"status", "error"},
                {"error", p.status().message()},
                {"length", p.length()},
                {"gene", GeneJson(record)}};
  }
  json scores = json::array();
  for (const auto& score : p.scores()) {
    scores.push_back(
        {{"class", score.class_name()}, {"probability", score.probability()}});
  }
  return json{
      {"id", p.id()},
      {"predicted_class", p.predicted_class()},
      {"probability", p.probability()},
      {"is_arg", p.is_arg()},
      {"uncertain", Uncertain(p, options)},
      {"length", p.length()},
      {"truncated", p.truncated()},
      {"top_k", scores},
      {"arg_probability", p.arg_probability()},
      {"below_min_residues", p.below_min_residues()},
      {"tier", TierName(p.tier())},
      {"model_class", p.model_class()},
      {"model_is_arg", p.model_is_arg()},
      {"nearest_reference",
       ReferenceJson(p.has_nearest_reference(), p.nearest_reference())},
      {"nearest_arg_reference",
       ReferenceJson(p.has_nearest_arg_reference(), p.nearest_arg_reference())},
      {"status", "ok"},
      {"gene", GeneJson(record)},
      {"windows", p.windows()}};
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

void PutRow(std::FILE* out, const std::vector<std::string>& fields) {
  std::vector<std::string> cleaned;
  cleaned.reserve(fields.size());
  for (const std::string& field : fields) cleaned.push_back(TsvField(field));
  Put(out, absl::StrCat(absl::StrJoin(cleaned, "\t"), "\n"));
}

// The nearest reference's columns, empty when there is none.
std::vector<std::string> ReferenceFields(const v1::Prediction& p) {
  if (!p.has_nearest_reference()) return std::vector<std::string>(8);
  const v1::ReferenceHit& r = p.nearest_reference();
  return {r.id(),
          r.gene(),
          r.accession(),
          r.class_name(),
          Fixed(r.identity_percent(), 2),
          Fixed(r.query_coverage_percent(), 2),
          Fixed(r.reference_coverage_percent(), 2),
          absl::StrFormat("%.3g", r.evalue())};
}

// The nearest ARG reference behind a known non-ARG one: id, class, identity
// and reference coverage, empty when there is none.
std::vector<std::string> ArgReferenceFields(const v1::Prediction& p) {
  if (!p.has_nearest_arg_reference()) return std::vector<std::string>(4);
  const v1::ReferenceHit& r = p.nearest_arg_reference();
  return {r.id(), r.class_name(), Fixed(r.identity_percent(), 2),
          Fixed(r.reference_coverage_percent(), 2)};
}

class TsvWriter final : public ResultWriter {
 public:
  TsvWriter(OutputOptions options, std::FILE* out)
      : options_(options), out_(out) {}
  void Begin(const RunInfo& run) override {
    run_ = run;
    if (run.continuing) return;
    PutRow(out_, {"id",
                  "predicted_class",
                  "probability",
                  "is_arg",
                  "uncertain",
                  "length",
                  "truncated",
                  "top_k",
                  "arg_probability",
                  "below_min_residues",
                  "tier",
                  "model_class",
                  "model_is_arg",
                  "reference_id",
                  "reference_gene",
                  "reference_accession",
                  "reference_class",
                  "identity",
                  "query_coverage",
                  "reference_coverage",
                  "evalue",
                  "model",
                  "reference_set",
                  "software_version",
                  "status",
                  "contig",
                  "gene_start",
                  "gene_end",
                  "strand",
                  "windows",
                  "arg_reference_id",
                  "arg_reference_class",
                  "arg_identity",
                  "arg_reference_coverage"});
  }
  void Write(const v1::Prediction& p, const FastaRecord& record) override {
    std::vector<std::string> gene(4);
    if (record.gene) {
      gene = {record.gene->contig, absl::StrCat(record.gene->start),
              absl::StrCat(record.gene->end), Strand(record.gene->strand)};
    }
    if (Failed(p)) {
      std::vector<std::string> fields(kColumnsBeforeStatus);
      fields[0] = p.id();
      fields[5] = absl::StrCat(p.length());
      fields[21] = absl::StrCat(run_.model_name, ":", run_.model_version);
      fields[22] = run_.reference_set_version;
      fields[23] = run_.software_version;
      fields.push_back(StatusText(p));
      for (std::string& field : gene) fields.push_back(std::move(field));
      fields.resize(kTsvColumns);
      PutRow(out_, fields);
      return;
    }
    std::string top;
    for (const auto& score : p.scores()) {
      absl::StrAppend(&top, top.empty() ? "" : ",", score.class_name(), ":",
                      Fixed(score.probability(), 4));
    }
    std::vector<std::string> fields = {p.id(),
                                       p.predicted_class(),
                                       Fixed(p.probability(), 4),
                                       Bool(p.is_arg()),
                                       Bool(Uncertain(p, options_)),
                                       absl::StrCat(p.length()),
                                       Bool(p.truncated()),
                                       top,
                                       Fixed(p.arg_probability(), 4),
                                       Bool(p.below_min_residues()),
                                       TierName(p.tier()),
                                       p.model_class(),
                                       Bool(p.model_is_arg())};
    for (std::string& field : ReferenceFields(p))
      fields.push_back(std::move(field));
    fields.push_back(absl::StrCat(run_.model_name, ":", run_.model_version));
    fields.push_back(run_.reference_set_version);
    fields.push_back(run_.software_version);
    fields.push_back(StatusText(p));
    for (std::string& field : gene) fields.push_back(std::move(field));
    fields.push_back(absl::StrCat(p.windows()));
    for (std::string& field : ArgReferenceFields(p))
      fields.push_back(std::move(field));
    PutRow(out_, fields);
  }
  void End() override {}

 private:
  const OutputOptions options_;
  std::FILE* const out_;
  RunInfo run_;
};

class JsonLinesWriter final : public ResultWriter {
 public:
  JsonLinesWriter(OutputOptions options, std::FILE* out)
      : options_(options), out_(out) {}
  void Begin(const RunInfo& run) override { versions_ = VersionsJson(run); }
  void Write(const v1::Prediction& p, const FastaRecord& record) override {
    json line = ToJson(p, options_, record);
    line["versions"] = versions_;
    Put(out_, line.dump() + "\n");
  }
  void End() override {}

 private:
  const OutputOptions options_;
  std::FILE* const out_;
  json versions_;
};

// One JSON document; predictions are streamed into its array rather than held
// in memory.
class JsonWriter final : public ResultWriter {
 public:
  JsonWriter(OutputOptions options, std::FILE* out)
      : options_(options), out_(out) {}
  void Begin(const RunInfo& run) override {
    Put(out_, absl::StrCat(
                  "{\"model\": ",
                  json{{"name", run.model_name}, {"version", run.model_version}}
                      .dump(),
                  ",\n \"versions\": ", VersionsJson(run).dump(),
                  ",\n \"predictions\": ["));
  }
  void Write(const v1::Prediction& p, const FastaRecord& record) override {
    Put(out_, absl::StrCat(first_ ? "\n  " : ",\n  ",
                           ToJson(p, options_, record).dump()));
    first_ = false;
  }
  void End() override { Put(out_, "\n ]\n}\n"); }

 private:
  const OutputOptions options_;
  std::FILE* const out_;
  bool first_ = true;
};

// The hAMRonization specification's columns in its order, then argserve's
// own; one row per protein called an ARG, as AMR tools report.
class HamronizationWriter final : public ResultWriter {
 public:
  explicit HamronizationWriter(std::FILE* out) : out_(out) {}
  void Begin(const RunInfo& run) override {
    run_ = run;
    PutRow(out_, {"input_file_name",
                  "gene_symbol",
                  "gene_name",
                  "reference_database_name",
                  "reference_database_version",
                  "reference_accession",
                  "analysis_software_name",
                  "analysis_software_version",
                  "genetic_variation_type",
                  "antimicrobial_agent",
                  "coverage_percentage",
                  "coverage_depth",
                  "coverage_ratio",
                  "drug_class",
                  "input_gene_length",
                  "input_gene_start",
                  "input_gene_stop",
                  "input_protein_length",
                  "input_protein_start",
                  "input_protein_stop",
                  "input_sequence_id",
                  "nucleotide_mutation",
                  "nucleotide_mutation_interpretation",
                  "predicted_phenotype",
                  "predicted_phenotype_confidence_level",
                  "amino_acid_mutation",
                  "amino_acid_mutation_interpretation",
                  "reference_gene_length",
                  "reference_gene_start",
                  "reference_gene_stop",
                  "reference_protein_length",
                  "reference_protein_start",
                  "reference_protein_stop",
                  "resistance_mechanism",
                  "strand_orientation",
                  "sequence_identity",
                  "argserve_tier",
                  "argserve_arg_probability",
                  "argserve_model_class",
                  "argserve_model",
                  "argserve_server_version"});
  }
  void Write(const v1::Prediction& p, const FastaRecord& record) override {
    if (Failed(p) || !p.is_arg()) return;
    // The ARG reference it resembles, also behind a nearer known non-ARG.
    const bool hit = p.has_nearest_reference() || p.has_nearest_arg_reference();
    const v1::ReferenceHit& r = p.has_nearest_arg_reference()
                                    ? p.nearest_arg_reference()
                                    : p.nearest_reference();
    const bool close = p.tier() == v1::TIER_REFERENCE;
    // A close reference names the gene; a distant one (homolog) or the
    // model's call gets the class's name, and the names say which it was.
    std::string symbol =
        close ? r.gene() : absl::StrCat(p.predicted_class(), "_resistance");
    std::string name =
        close ? r.gene()
        : p.tier() == v1::TIER_HOMOLOG
            ? absl::StrCat(p.predicted_class(),
                           " resistance protein (distant homolog of ", r.gene(),
                           " at ", Fixed(r.identity_percent(), 1),
                           "% identity, supported by the model)")
        : hit ? absl::StrCat(p.predicted_class(),
                             " resistance protein (model call; nearest "
                             "reference ",
                             r.gene(), " at ", Fixed(r.identity_percent(), 1),
                             "% identity)")
              : absl::StrCat(p.predicted_class(),
                             " resistance protein (model call; no reference "
                             "aligns)");
    auto when = [&](const std::string& value) {
      return hit ? value : std::string();
    };
    PutRow(out_, {run_.input_file_name,
                  symbol,
                  name,
                  absl::StrCat("argserve:", run_.model_name),
                  run_.reference_set_version,
                  close ? r.accession() : std::string(),
                  "argserve",
                  run_.software_version,
                  "gene_presence_detected",
                  "",
                  when(Fixed(r.reference_coverage_percent(), 2)),
                  "",
                  when(absl::StrCat(r.reference_end() - r.reference_start() + 1,
                                    "/", r.reference_length())),
                  p.predicted_class(),
                  record.gene
                      ? absl::StrCat(record.gene->end - record.gene->start + 1)
                      : "",
                  record.gene ? absl::StrCat(record.gene->start) : "",
                  record.gene ? absl::StrCat(record.gene->end) : "",
                  absl::StrCat(p.length()),
                  when(absl::StrCat(r.query_start())),
                  when(absl::StrCat(r.query_end())),
                  record.gene ? record.gene->contig : p.id(),
                  "",
                  "",
                  "",
                  "",
                  "",
                  "",
                  "",
                  "",
                  "",
                  when(absl::StrCat(r.reference_length())),
                  when(absl::StrCat(r.reference_start())),
                  when(absl::StrCat(r.reference_end())),
                  "",
                  record.gene ? Strand(record.gene->strand) : "",
                  when(Fixed(r.identity_percent(), 2)),
                  TierName(p.tier()),
                  Fixed(p.arg_probability(), 4),
                  p.model_class(),
                  absl::StrCat(run_.model_name, ":", run_.model_version),
                  run_.server_version});
  }
  void End() override {}

 private:
  std::FILE* const out_;
  RunInfo run_;
};

}  // namespace

PartialOutput ReadPartialOutput(const std::string& text, OutputFormat format) {
  PartialOutput partial;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos;
       start = end + 1) {
    const absl::string_view line(text.data() + start, end - start);
    if (format == OutputFormat::kTsv) {
      if (start == 0 && absl::StartsWith(line, "id\t")) {
        partial.has_header = true;
      } else {
        partial.ids.emplace_back(line.substr(0, line.find('\t')));
      }
    } else {
      json object = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (object.is_discarded() || !object.contains("id")) break;
      partial.ids.push_back(object["id"].get<std::string>());
    }
    partial.complete_bytes = end + 1;
  }
  return partial;
}

std::string TierName(v1::Tier tier) {
  switch (tier) {
    case v1::TIER_REFERENCE:
      return "reference";
    case v1::TIER_MODEL:
      return "model";
    case v1::TIER_NOVEL:
      return "novel";
    case v1::TIER_HOMOLOG:
      return "homolog";
    default:
      return "";
  }
}

std::string HamronizationInputName(const std::string& path) {
  if (path == "-" || path.empty()) return "stdin";
  absl::string_view name = path;
  if (const size_t slash = name.rfind('/'); slash != absl::string_view::npos)
    name.remove_prefix(slash + 1);
  absl::ConsumeSuffix(&name, ".gz");
  for (const char* suffix : {".fna", ".fasta", ".faa", ".fa"}) {
    if (absl::ConsumeSuffix(&name, suffix)) break;
  }
  return std::string{name};
}

std::unique_ptr<ResultWriter> MakeResultWriter(const OutputOptions& options,
                                               std::FILE* out) {
  switch (options.format) {
    case OutputFormat::kTsv:
      return std::make_unique<TsvWriter>(options, out);
    case OutputFormat::kJsonLines:
      return std::make_unique<JsonLinesWriter>(options, out);
    case OutputFormat::kJson:
      return std::make_unique<JsonWriter>(options, out);
    case OutputFormat::kHamronization:
      return std::make_unique<HamronizationWriter>(out);
  }
  return nullptr;
}

}  // namespace argserve
