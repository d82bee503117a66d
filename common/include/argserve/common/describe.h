// Printable renderings of caller-supplied bytes and ids, for error messages and
// logs: nothing a caller sends reaches a terminal or a log line unescaped.
#ifndef ARGSERVE_COMMON_DESCRIBE_H_
#define ARGSERVE_COMMON_DESCRIBE_H_

#include <string>
#include <string_view>

namespace argserve {

// 'J', or \x00 for control and non-ASCII bytes.
std::string DescribeByte(unsigned char byte);

// The id in quotes, escaped and cut to a bounded length.
std::string DescribeId(std::string_view id);

}  // namespace argserve

#endif  // ARGSERVE_COMMON_DESCRIBE_H_
