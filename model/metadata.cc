#include "argserve/model/metadata.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace argserve {
namespace {

using nlohmann::json;

absl::Status Missing(const std::string& key) {
  return absl::InvalidArgumentError(
      absl::StrCat("model.json: missing or malformed key '", key, "'"));
}

template <typename T>
absl::Status Read(const json& object, const std::string& key, T& out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Missing(key);
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    return Missing(key);
  }
  return absl::OkStatus();
}

int64_t IndexOf(const std::vector<std::string>& alphabet,
                const std::string& token) {
  auto it = std::find(alphabet.begin(), alphabet.end(), token);
  return it == alphabet.end() ? -1 : it - alphabet.begin();
}

}  // namespace

absl::StatusOr<ModelMetadata> ParseModelMetadata(const std::string& json_text) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("model.json is not a JSON object");
  }
  ModelMetadata m;
  m.raw_json = json_text;
  if (auto s = Read(root, "format", m.format); !s.ok()) return s;
  if (m.format != kModelFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.json: unsupported format '", m.format,
                     "' (expected '", kModelFormat, "')"));
  }
  for (const auto& [key, field] :
       {std::pair<const char*, std::string*>{"name", &m.name},
        {"version", &m.version},
        {"nonarg_class", &m.nonarg_class},
        {"residues", &m.residues}}) {
    if (auto s = Read(root, key, *field); !s.ok()) return s;
  }
  if (auto s = Read(root, "classes", m.classes); !s.ok()) return s;
  if (m.classes.size() < 2)
    return absl::InvalidArgumentError(
        "model.json: 'classes' needs at least 2 entries");
  if (std::set<std::string>(m.classes.begin(), m.classes.end()).size() !=
      m.classes.size()) {
    return absl::InvalidArgumentError("model.json: 'classes' has duplicates");
  }
  m.nonarg_index = static_cast<int>(IndexOf(m.classes, m.nonarg_class));
  if (m.nonarg_index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.json: nonarg_class '", m.nonarg_class,
                     "' is not one of 'classes'"));
  }
  if (auto s = Read(root, "alphabet", m.alphabet); !s.ok()) return s;
  if (auto s = Read(root, "max_residues", m.max_residues); !s.ok()) return s;
  if (m.max_residues <= 0) return Missing("max_residues");

  auto special_it = root.find("special_tokens");
  if (special_it == root.end() || !special_it->is_object())
    return Missing("special_tokens");
  const json& special = *special_it;
  for (const auto& [key, field] :
       {std::pair<const char*, int64_t*>{"cls", &m.cls_token},
        {"pad", &m.pad_token},
        {"eos", &m.eos_token},
        {"unk", &m.unk_token},
        {"mask", &m.mask_token}}) {
    if (auto s = Read(special, key, *field); !s.ok())
      return Missing(absl::StrCat("special_tokens.", key));
    if (*field < 0 || *field >= static_cast<int64_t>(m.alphabet.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.json: special_tokens.", key, " = ", *field,
                       " is outside the alphabet"));
    }
  }
  for (char residue : m.residues) {
    if (IndexOf(m.alphabet, std::string(1, residue)) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.json: residue '", std::string(1, residue),
                       "' is not in the alphabet"));
    }
  }

  auto backbone = root.find("backbone");
  if (backbone == root.end() || !backbone->is_object())
    return Missing("backbone");
  try {
    m.backbone_architecture = backbone->value("architecture", "");
    m.num_layers = backbone->value("num_layers", 0);
    m.embed_dim = backbone->value("embed_dim", 0);
    m.attention_heads = backbone->value("attention_heads", 0);
    m.backbone_source = backbone->value("source", "");
  } catch (const json::exception&) {
    return Missing("backbone");
  }

  auto calibration = root.find("calibration");
  if (calibration != root.end() && !calibration->is_null()) {
    if (!calibration->is_object()) return Missing("calibration");
    if (auto t = calibration->find("arg_threshold"); t != calibration->end()) {
      if (!t->is_number() || t->get<double>() <= 0 || t->get<double>() >= 1)
        return Missing("calibration.arg_threshold");
      m.arg_threshold = t->get<double>();
    }
    if (auto r = calibration->find("min_residues"); r != calibration->end()) {
      if (!r->is_number_integer() || r->get<int>() < 0)
        return Missing("calibration.min_residues");
      m.min_residues = r->get<int>();
    }
  }

  auto references = root.find("references");
  if (references != root.end() && !references->is_null()) {
    if (!references->is_object()) return Missing("references");
    ReferenceSetInfo info;
    if (auto s = Read(*references, "file", info.file);
        !s.ok() || info.file.empty())
      return Missing("references.file");
    if (auto s = Read(*references, "count", info.count);
        !s.ok() || info.count < 0)
      return Missing("references.count");
    try {
      info.sha256 = references->value("sha256", "");
      info.source = references->value("source", "");
      info.version = references->value("version", "");
    } catch (const json::exception&) {
      return Missing("references");
    }
    m.references = std::move(info);
  }
  auto evidence = root.find("evidence");
  if (evidence != root.end() && !evidence->is_null()) {
    if (!evidence->is_object()) return Missing("evidence");
    for (const auto& [key, field, low, high] :
         {std::tuple<const char*, double*, double, double>{
              "reference_min_identity", &m.evidence.reference_min_identity, 0,
              1},
          {"reference_min_coverage", &m.evidence.reference_min_coverage, 0, 1},
          {"max_evalue", &m.evidence.max_evalue, 0, 1e308}}) {
      auto it = evidence->find(key);
      if (it == evidence->end()) continue;
      if (!it->is_number() || it->get<double>() < low ||
          it->get<double>() > high)
        return Missing(absl::StrCat("evidence.", key));
      *field = it->get<double>();
    }
    for (const auto& [key, field] :
         {std::pair<const char*, std::optional<double>*>{
              "homolog_min_arg_probability",
              &m.evidence.homolog_min_arg_probability},
          {"novel_min_arg_probability",
           &m.evidence.novel_min_arg_probability}}) {
      auto it = evidence->find(key);
      if (it == evidence->end() || it->is_null()) continue;
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1)
        return Missing(absl::StrCat("evidence.", key));
      *field = it->get<double>();
    }
  }
  return m;
}

}  // namespace argserve
