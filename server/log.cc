#include "server/log.h"

#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace argserve {
namespace {

// Quotes a value when it has spaces, quotes or control characters, so each line
// stays one record.
std::string Quote(std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' ||
        static_cast<unsigned char>(c) < 0x20)
      plain = false;
  }
  if (plain) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void Log(std::string_view level, std::string_view message, LogFields fields) {
  std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " level=", std::string(level), " msg=", Quote(message));
  for (const auto& [key, value] : fields)
    absl::StrAppend(&line, " ", std::string(key), "=", Quote(value));
  line += '\n';
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

void LogInfo(std::string_view message, LogFields fields) {
  Log("info", message, fields);
}
void LogWarning(std::string_view message, LogFields fields) {
  Log("warning", message, fields);
}
void LogError(std::string_view message, LogFields fields) {
  Log("error", message, fields);
}

}  // namespace argserve
