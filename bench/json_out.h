// Writes a benchmark's results as JSON, for bench/run.sh and other scripts.
#ifndef ARGSERVE_BENCH_JSON_OUT_H_
#define ARGSERVE_BENCH_JSON_OUT_H_

#include <cstdio>
#include <string>

#include "nlohmann/json.hpp"

namespace argserve {

// Writes `result` to `path` (nothing when empty); false, with a message on
// stderr, on failure.
inline bool WriteJsonFile(const std::string& path,
                          const nlohmann::json& result) {
  if (path.empty()) return true;
  FILE* out = std::fopen(path.c_str(), "w");
  const std::string text = result.dump(2) + "\n";
  bool ok = out != nullptr &&
            std::fwrite(text.data(), 1, text.size(), out) == text.size();
  if (out != nullptr && std::fclose(out) != 0) ok = false;
  if (!ok) std::fprintf(stderr, "cannot write '%s'\n", path.c_str());
  return ok;
}

}  // namespace argserve

#endif  // ARGSERVE_BENCH_JSON_OUT_H_
