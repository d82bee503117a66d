// argserve-cli's command line: subcommands, connection and classify options,
// parsed with CLI11. See `argserve-cli --help`.
#ifndef ARGSERVE_CLIENT_OPTIONS_H_
#define ARGSERVE_CLIENT_OPTIONS_H_

#include <string>
#include <vector>

#include "client/input.h"
#include "client/output.h"

namespace argserve {

// Exit codes: documented in the README ("Client") and in --help.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // Other errors (e.g. not SERVING).
inline constexpr int kExitUsage = 2;        // Bad command line.
inline constexpr int kExitBadInput = 3;     // Malformed FASTA or sequence.
inline constexpr int kExitUnavailable = 4;  // Unreachable or overloaded.
inline constexpr int kExitServerError = 5;  // The server refused or failed.
// Every other record was classified; some could not be (their status says
// why, in the output).
inline constexpr int kExitSomeRecordsFailed = 6;

enum class Command { kClassify, kInfo, kHealth, kHelp, kVersion };

// What a request asks for proteins longer than the model's maximum; the
// server's own policy unless set.
enum class LongSequences { kServerDefault, kReject, kTruncate, kWindow };

// How to reach the server; shared by every subcommand.
struct ConnectionOptions {
  std::string target;  // gRPC target; default $ARGSERVE_TARGET or local.
  std::string tls_ca, tls_cert, tls_key;
  std::string token;  // Bearer token read from --token-file.
  double deadline_seconds = 300;
  int retries = 5;  // Of a call refused as UNAVAILABLE or RESOURCE_EXHAUSTED.
};

struct ClientOptions {
  Command command = Command::kHelp;
  std::string help;  // The --help text, when command is kHelp.
  ConnectionOptions connection;
  // classify
  std::vector<std::string> inputs;
  std::vector<std::string> seqs;
  std::string output;
  OutputOptions output_options;
  int top_k = 3;
  int batch_size = 64;
  int concurrency = 4;
  bool stream = false;
  bool quiet = false;
  InputType input = InputType::kProtein;
  GeneCalling gene_calling = GeneCalling::kMeta;
  LongSequences long_sequences = LongSequences::kServerDefault;
  // Fail the whole run on the first record that cannot be classified.
  bool strict = false;
  // Continue the interrupted run whose partial results are in OUTPUT.partial.
  bool resume = false;
  // info
  bool info_json = false;
  // health
  std::string service;
};

// A command line that cannot be run: the message says what is wrong.
struct UsageError {
  std::string message;
};

// The whole file; throws UsageError naming it when it cannot be read.
std::string ReadFileOrThrow(const std::string& path);

// Parses argv; throws UsageError. `env_target` is $ARGSERVE_TARGET (may be
// null).
ClientOptions ParseClientOptions(int argc, const char* const* argv,
                                 const char* env_target);

}  // namespace argserve

#endif  // ARGSERVE_CLIENT_OPTIONS_H_
