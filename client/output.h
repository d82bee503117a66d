// Result writers of argserve-cli: TSV, JSON Lines, JSON and hAMRonization
// TSV.
#ifndef ARGSERVE_CLIENT_OUTPUT_H_
#define ARGSERVE_CLIENT_OUTPUT_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "argserve/common/fasta.h"
#include "argserve/v1/argserve.pb.h"

namespace argserve {

enum class OutputFormat { kTsv, kJsonLines, kJson, kHamronization };

struct OutputOptions {
  OutputFormat format = OutputFormat::kTsv;
  // Predictions with a lower probability are marked uncertain.
  double min_probability = 0;
};

// What produced the results; every format records it.
struct RunInfo {
  std::string software_version;  // argserve-cli's.
  std::string server_version;
  std::string model_name;
  std::string model_version;
  std::string reference_set_version;  // Empty: no reference set.
  std::string input_file_name;        // For hAMRonization; "-": stdin.
  // The output continues an earlier run's: no header again.
  bool continuing = false;
};

class ResultWriter {
 public:
  virtual ~ResultWriter() = default;
  virtual void Begin(const RunInfo& run) = 0;
  // `record`: what the prediction is of (its gene's location, if any); a
  // prediction with a non-OK status is a record that was not classified.
  virtual void Write(const v1::Prediction& prediction,
                     const FastaRecord& record) = 0;
  virtual void End() = 0;
};

// Writes to `out` (not owned).
std::unique_ptr<ResultWriter> MakeResultWriter(const OutputOptions& options,
                                               std::FILE* out);

// The ids of the complete records in a partial TSV or JSON Lines output, and
// the byte length of its complete lines (what to keep of it).
struct PartialOutput {
  std::vector<std::string> ids;
  size_t complete_bytes = 0;
  bool has_header = false;  // TSV.
};
PartialOutput ReadPartialOutput(const std::string& text, OutputFormat format);

// "reference", "model", "novel", "homolog"; "" for TIER_UNSPECIFIED.
std::string TierName(v1::Tier tier);

// hAMRonization's input_file_name: the base name without .gz and a FASTA
// suffix, as hAMRonization normalises it.
std::string HamronizationInputName(const std::string& path);

}  // namespace argserve

#endif  // ARGSERVE_CLIENT_OUTPUT_H_
