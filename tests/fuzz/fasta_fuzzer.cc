// Fuzzes the client's FASTA parser: any bytes must give records or a clean
// error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "argserve/common/fasta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<argserve::FastaRecord> records;
  const absl::Status status = argserve::ParseFasta(text, "fuzz.fa", records);
  if (status.ok()) {
    (void)argserve::CheckUniqueIds(records);
    for (const auto& record : records) {
      // Invariants of a successful parse.
      if (record.id.empty() || record.residues.empty()) __builtin_trap();
    }
  }
  return 0;
}
