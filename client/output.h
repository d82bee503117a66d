// Result writers of argserve-cli: TSV, JSON Lines and JSON.
#ifndef ARGSERVE_CLIENT_OUTPUT_H_
#define ARGSERVE_CLIENT_OUTPUT_H_

#include <cstdio>
#include <memory>
#include <string>

#include "argserve/v1/argserve.pb.h"

namespace argserve {

enum class OutputFormat { kTsv, kJsonLines, kJson };

struct OutputOptions {
  OutputFormat format = OutputFormat::kTsv;
  // Predictions with a lower probability are marked uncertain.
  double min_probability = 0;
};

class ResultWriter {
 public:
  virtual ~ResultWriter() = default;
  virtual void Begin(const std::string& model_name,
                     const std::string& model_version) = 0;
  virtual void Write(const v1::Prediction& prediction) = 0;
  virtual void End() = 0;
};

// Writes to `out` (not owned).
std::unique_ptr<ResultWriter> MakeResultWriter(const OutputOptions& options,
                                               std::FILE* out);

}  // namespace argserve

#endif  // ARGSERVE_CLIENT_OUTPUT_H_
