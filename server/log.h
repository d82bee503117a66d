// Structured one-line logs (logfmt) on stderr: ts=... level=info msg="..."
// key=value ...
#ifndef ARGSERVE_SERVER_LOG_H_
#define ARGSERVE_SERVER_LOG_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace argserve {

using LogFields =
    std::initializer_list<std::pair<std::string_view, std::string>>;

void LogInfo(std::string_view message, LogFields fields = {});
void LogWarning(std::string_view message, LogFields fields = {});
void LogError(std::string_view message, LogFields fields = {});

}  // namespace argserve

#endif  // ARGSERVE_SERVER_LOG_H_
