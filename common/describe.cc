#include "argserve/common/describe.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace argserve {

std::string DescribeByte(unsigned char byte) {
  if (byte >= 0x21 && byte < 0x7f)
    return absl::StrCat("'", std::string(1, static_cast<char>(byte)), "'");
  if (byte == ' ') return "' ' (space)";
  return absl::StrFormat("\\x%02x", byte);
}

std::string DescribeId(std::string_view id) {
  constexpr size_t kMaxShown = 80;
  std::string shown;
  for (size_t i = 0; i < id.size() && i < kMaxShown; ++i) {
    auto byte = static_cast<unsigned char>(id[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\'' && byte != '\\') {
      shown.push_back(static_cast<char>(byte));
    } else {
      shown += absl::StrFormat("\\x%02x", byte);
    }
  }
  if (id.size() > kMaxShown) shown += "...";
  return absl::StrCat("'", shown, "'");
}

}  // namespace argserve
