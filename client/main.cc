// argserve-cli: command-line client of argserve. See `argserve-cli --help`.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "argserve/v1/argserve.grpc.pb.h"
#include "client/fasta.h"
#include "client/output.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace argserve {
namespace {

// Exit codes: documented in the README ("Client") and in --help.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // Other errors (server not serving, internal).
constexpr int kExitUsage = 2;    // Bad command line.
constexpr int kExitBadInput = 3;  // Malformed FASTA or sequence.
constexpr int kExitUnavailable =
    4;  // Server unreachable or overloaded after retries.
constexpr int kExitServerError =
    5;  // The server refused or failed the request.

constexpr char kUsage[] =
    R"(argserve-cli: classify protein sequences with an argserve server.

Usage:
  argserve-cli classify [options] [FASTA ...]   classify FASTA files (plain or .gz; '-' or none = stdin)
  argserve-cli classify [options] --seq ID=RESIDUES [--seq ...]
  argserve-cli info [--target T] [--format text|json]
  argserve-cli health [--target T] [--service NAME]

Connection options (all subcommands):
  --target T          server address; gRPC target syntax: host:port, dns:///host:port (all
                      addresses of the name), ipv4:1.2.3.4:50051,1.2.3.5:50051 (several servers);
                      requests are spread round-robin. Default $ARGSERVE_TARGET or 127.0.0.1:50051
  --tls-ca FILE       use TLS, trusting this CA certificate (PEM)
  --tls-cert FILE     client certificate for mutual TLS (with --tls-key)
  --tls-key FILE      client private key for mutual TLS
  --token-file FILE   send the bearer token in FILE (servers run with --auth_token_file)
  --deadline SECONDS  deadline of each call (default 300)

classify options:
  -o, --output FILE   write results here (written to a temporary file, renamed when complete)
  --format F          tsv (default; with a header line), jsonl (one JSON object per line), json
  --top-k K           classes listed per sequence, most probable first (default 3; 0 = all)
  --min-probability P mark predictions below P as uncertain (default 0)
  --batch-size N      sequences per request (default 64)
  --concurrency N     requests in flight (default 4); output stays in input order
  --stream            use one bidirectional stream instead of unary requests
  --retries N         retries of a request on UNAVAILABLE / RESOURCE_EXHAUSTED, with
                      exponential backoff (default 5)
  --quiet             no progress bar (it is shown only when stderr is a terminal)

Exit codes: 0 success; 1 other failure (e.g. health not SERVING); 2 usage error;
3 bad input (malformed FASTA, reported with file, line and record); 4 server unavailable;
5 the server refused or failed the request.
)";

struct Options {
  std::string command;
  std::vector<std::string> inputs;
  std::vector<std::string> seqs;
  std::string target;
  std::string tls_ca, tls_cert, tls_key;
  double deadline_seconds = 300;
  std::string output;
  std::string format = "tsv";
  int top_k = 3;
  double min_probability = 0;
  int batch_size = 64;
  int concurrency = 4;
  bool stream = false;
  int retries = 5;
  bool quiet = false;
  std::string service;
  std::string token;  // Bearer token read from --token-file.
};

struct UsageError {
  std::string message;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError{absl::StrCat("cannot read '", path, "'")};
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int ParseInt(const std::string& flag, const std::string& value, int min) {
  int result = 0;
  if (!absl::SimpleAtoi(value, &result) || result < min) {
    throw UsageError{absl::StrCat(flag, " needs a whole number >= ", min,
                                  ", not '", value, "'")};
  }
  return result;
}

double ParseDouble(const std::string& flag, const std::string& value,
                   double min, double max) {
  double result = 0;
  if (!absl::SimpleAtod(value, &result) || result < min || result > max) {
    throw UsageError{absl::StrCat(flag, " needs a number in [", min, ", ", max,
                                  "], not '", value, "'")};
  }
  return result;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  // Read while parsing arguments, before any thread starts.
  const char* env_target =
      std::getenv("ARGSERVE_TARGET");  // NOLINT(concurrency-mt-unsafe)
  o.target = env_target != nullptr && *env_target != '\0' ? env_target
                                                          : "127.0.0.1:50051";
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty())
    throw UsageError{"missing subcommand (classify, info or health)"};
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (only_positional || arg == "-" || arg.empty() || arg[0] != '-') {
      if (o.command.empty()) {
        o.command = arg;
      } else {
        o.inputs.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      o.command = "help";
      return o;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (size_t eq = arg.find('=');
        eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size())
        throw UsageError{absl::StrCat(name, " needs a value")};
      return args[++i];
    };
    if (name == "--quiet" || name == "-q") {
      o.quiet = true;
    } else if (name == "--stream") {
      o.stream = true;
    } else if (name == "--target") {
      o.target = value();
    } else if (name == "--tls-ca") {
      o.tls_ca = value();
    } else if (name == "--tls-cert") {
      o.tls_cert = value();
    } else if (name == "--tls-key") {
      o.tls_key = value();
    } else if (name == "--deadline") {
      o.deadline_seconds = ParseDouble(name, value(), 0.001, 1e7);
    } else if (name == "-o" || name == "--output") {
      o.output = value();
    } else if (name == "--format") {
      o.format = value();
    } else if (name == "--top-k") {
      o.top_k = ParseInt(name, value(), 0);
    } else if (name == "--min-probability") {
      o.min_probability = ParseDouble(name, value(), 0, 1);
    } else if (name == "--batch-size") {
      o.batch_size = ParseInt(name, value(), 1);
    } else if (name == "--concurrency") {
      o.concurrency = ParseInt(name, value(), 1);
    } else if (name == "--retries") {
      o.retries = ParseInt(name, value(), 0);
    } else if (name == "--seq") {
      o.seqs.push_back(value());
    } else if (name == "--token-file") {
      std::string token = ReadFile(value());
      while (!token.empty() &&
             std::isspace(static_cast<unsigned char>(token.back())))
        token.pop_back();
      if (token.empty()) throw UsageError{"--token-file is empty"};
      o.token = token;
    } else if (name == "--service") {
      o.service = value();
    } else {
      throw UsageError{absl::StrCat("unknown option '", name, "'")};
    }
  }
  if (o.command.empty())
    throw UsageError{"missing subcommand (classify, info or health)"};
  if (o.command != "classify" && o.command != "info" && o.command != "health" &&
      o.command != "help") {
    throw UsageError{absl::StrCat("unknown subcommand '", o.command,
                                  "' (classify, info or health)")};
  }
  if (o.command != "classify" && !o.inputs.empty()) {
    throw UsageError{absl::StrCat("'", o.command, "' takes no file arguments")};
  }
  if (o.tls_cert.empty() != o.tls_key.empty())
    throw UsageError{"--tls-cert and --tls-key go together"};
  if (!o.tls_cert.empty() && o.tls_ca.empty())
    throw UsageError{"--tls-cert/--tls-key need --tls-ca"};
  return o;
}

std::shared_ptr<grpc::Channel> Connect(const Options& o) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (o.tls_ca.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(o.tls_ca);
    if (!o.tls_cert.empty()) {
      ssl.pem_cert_chain = ReadFile(o.tls_cert);
      ssl.pem_private_key = ReadFile(o.tls_key);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  arguments.SetLoadBalancingPolicyName("round_robin");
  arguments.SetMaxReceiveMessageSize(-1);
  arguments.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(o.target, credentials, arguments);
}

// Deadline and credentials of one call.
void SetDeadline(grpc::ClientContext& context, const Options& o) {
  if (!o.token.empty())
    context.AddMetadata("authorization", "Bearer " + o.token);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(
                           static_cast<int64_t>(o.deadline_seconds * 1e6)));
}

int ExitCodeFor(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kExitBadInput;
    default:
      return kExitServerError;
  }
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

std::chrono::milliseconds Backoff(int attempt) {
  const int64_t ms = std::min<int64_t>(100LL << std::min(attempt, 10), 5000);
  return std::chrono::milliseconds(ms);
}

void Fail(const std::string& message) {
  std::fprintf(stderr, "argserve-cli: error: %s\n", message.c_str());
}

// Progress on stderr, redrawn at most a few times a second; only for terminals.
class Progress {
 public:
  Progress(bool enabled, size_t total)
      : enabled_(enabled),
        total_(total),
        start_(std::chrono::steady_clock::now()) {}
  void Update(size_t done, bool final = false) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? done / seconds : 0;
    const double eta = rate > 0 ? (total_ - done) / rate : 0;
    const int width = 30;
    const int filled =
        total_ == 0 ? width : static_cast<int>(width * done / total_);
    std::fprintf(stderr, "\r[%s%s] %zu/%zu sequences  %.1f seq/s  ETA %.0fs ",
                 std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total_, rate,
                 eta);
    if (final) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  const bool enabled_;
  const size_t total_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

// Collects results and writes them in input order as soon as each next one is
// available.
class OrderedSink {
 public:
  OrderedSink(ResultWriter& writer, size_t total, Progress& progress)
      : writer_(writer), results_(total), progress_(progress) {}

  void Put(size_t index, v1::Prediction prediction) {
    std::lock_guard<std::mutex> lock(mu_);
    results_[index] = std::move(prediction);
    while (next_ < results_.size() && results_[next_]) {
      writer_.Write(*results_[next_]);
      results_[next_].reset();  // Written: free it.
      ++next_;
    }
    progress_.Update(next_);
  }

  size_t written() const { return next_; }

 private:
  std::mutex mu_;
  ResultWriter& writer_;
  std::vector<std::optional<v1::Prediction>> results_;
  size_t next_ = 0;
  Progress& progress_;
};

// Unary mode: `concurrency` threads each send one batch at a time; results are
// reordered.
grpc::Status ClassifyUnary(const Options& o, v1::ArgClassifier::Stub& stub,
                           const std::vector<FastaRecord>& records,
                           OrderedSink& sink) {
  const size_t batches = (records.size() + o.batch_size - 1) / o.batch_size;
  std::atomic<size_t> next_batch{0};
  std::mutex error_mu;
  grpc::Status first_error;
  std::atomic<bool> failed{false};
  auto worker = [&] {
    while (!failed.load()) {
      const size_t b = next_batch.fetch_add(1);
      if (b >= batches) return;
      v1::ClassifyRequest request;
      request.mutable_options()->set_top_k(o.top_k);
      const size_t begin = b * o.batch_size;
      const size_t end = std::min(records.size(), begin + o.batch_size);
      for (size_t i = begin; i < end; ++i) {
        auto* sequence = request.add_sequences();
        sequence->set_id(records[i].id);
        sequence->set_residues(records[i].residues);
      }
      grpc::Status status;
      v1::ClassifyResponse response;
      for (int attempt = 0;; ++attempt) {
        grpc::ClientContext context;
        SetDeadline(context, o);
        response.Clear();
        status = stub.Classify(&context, request, &response);
        if (status.ok() || !Retryable(status.error_code()) ||
            attempt >= o.retries)
          break;
        std::this_thread::sleep_for(Backoff(attempt));
      }
      if (status.ok() &&
          response.predictions_size() != static_cast<int>(end - begin)) {
        status = grpc::Status(
            grpc::StatusCode::INTERNAL,
            absl::StrCat("server answered ", response.predictions_size(),
                         " of ", end - begin, " sequences"));
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = status;
        failed.store(true);
        return;
      }
      for (size_t i = begin; i < end; ++i) {
        sink.Put(i, std::move(*response.mutable_predictions(
                        static_cast<int>(i - begin))));
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(o.concurrency);
  for (int t = 0; t < o.concurrency; ++t) threads.emplace_back(worker);
  for (auto& thread : threads) thread.join();
  return first_error;
}

// Stream mode: one bidirectional stream; sequences refused with a retryable
// per-sequence status are sent again on a new stream, with backoff.
grpc::Status ClassifyStream(const Options& o, v1::ArgClassifier::Stub& stub,
                            const std::vector<FastaRecord>& records,
                            OrderedSink& sink) {
  std::unordered_map<std::string_view, size_t> index_of;
  index_of.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i)
    index_of.emplace(records[i].id, i);
  std::vector<size_t> pending(records.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;

  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    SetDeadline(context, o);
    auto stream = stub.ClassifyStream(&context);
    std::thread writer([&] {
      for (size_t begin = 0; begin < pending.size(); begin += o.batch_size) {
        v1::ClassifyStreamRequest request;
        request.mutable_options()->set_top_k(o.top_k);
        for (size_t k = begin;
             k < std::min(pending.size(), begin + o.batch_size); ++k) {
          auto* sequence = request.add_sequences();
          sequence->set_id(records[pending[k]].id);
          sequence->set_residues(records[pending[k]].residues);
        }
        if (!stream->Write(request))
          break;  // The stream ended; Finish() says why.
      }
      stream->WritesDone();
    });
    std::vector<size_t> retry;
    grpc::Status sequence_error;
    v1::ClassifyStreamResponse response;
    while (stream->Read(&response)) {
      for (auto& prediction : *response.mutable_predictions()) {
        auto it = index_of.find(prediction.id());
        if (it == index_of.end()) continue;
        const auto code =
            static_cast<grpc::StatusCode>(prediction.status().code());
        if (code == grpc::StatusCode::OK) {
          sink.Put(it->second, std::move(prediction));
        } else if (Retryable(code) && attempt < o.retries) {
          retry.push_back(it->second);
        } else if (sequence_error.ok()) {
          sequence_error = grpc::Status(
              code, absl::StrCat("sequence '", prediction.id(),
                                 "': ", prediction.status().message()));
        }
      }
    }
    writer.join();
    grpc::Status status = stream->Finish();
    if (!sequence_error.ok()) return sequence_error;
    if (!status.ok()) {
      if (!Retryable(status.error_code()) || attempt >= o.retries)
        return status;
      // Everything not yet answered is sent again.
      retry.clear();
      for (size_t i : pending) retry.push_back(i);
    }
    std::vector<size_t> unanswered(retry.begin(), retry.end());
    if (status.ok() && retry.empty()) return grpc::Status::OK;
    std::sort(unanswered.begin(), unanswered.end());
    // Only those not already delivered (a failed stream may have answered
    // some).
    pending.clear();
    for (size_t i : unanswered) {
      if (i >= sink.written()) pending.push_back(i);
    }
    if (pending.empty()) return grpc::Status::OK;
    std::this_thread::sleep_for(Backoff(attempt));
  }
}

int RunClassify(const Options& o) {
  OutputOptions output_options;
  output_options.min_probability = o.min_probability;
  if (o.format == "tsv") {
    output_options.format = OutputFormat::kTsv;
  } else if (o.format == "jsonl") {
    output_options.format = OutputFormat::kJsonLines;
  } else if (o.format == "json") {
    output_options.format = OutputFormat::kJson;
  } else {
    throw UsageError{absl::StrCat("--format must be tsv, jsonl or json, not '",
                                  o.format, "'")};
  }

  // Everything is read and checked before anything is sent.
  std::vector<FastaRecord> records;
  for (const std::string& seq : o.seqs) {
    const size_t eq = seq.find('=');
    std::string text =
        eq == std::string::npos
            ? absl::StrCat(">seq", records.size() + 1, "\n", seq, "\n")
            : absl::StrCat(">", seq.substr(0, eq), "\n", seq.substr(eq + 1),
                           "\n");
    if (auto status = ParseFasta(
            text, absl::StrCat("--seq #", &seq - o.seqs.data() + 1), records);
        !status.ok()) {
      Fail(std::string{status.message()});
      return kExitBadInput;
    }
  }
  std::vector<std::string> inputs = o.inputs;
  if (inputs.empty() && o.seqs.empty()) inputs.emplace_back("-");
  for (const std::string& path : inputs) {
    if (auto status = ReadFasta(path, records); !status.ok()) {
      Fail(std::string{status.message()});
      return kExitBadInput;
    }
  }
  if (auto status = CheckUniqueIds(records); !status.ok()) {
    Fail(std::string{status.message()});
    return kExitBadInput;
  }

  auto channel = Connect(o);
  auto stub = v1::ArgClassifier::NewStub(channel);
  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    SetDeadline(context, o);
    grpc::Status status =
        stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
    for (int attempt = 0;
         !status.ok() && Retryable(status.error_code()) && attempt < o.retries;
         ++attempt) {
      std::this_thread::sleep_for(Backoff(attempt));
      grpc::ClientContext retry_context;
      SetDeadline(retry_context, o);
      status =
          stub->GetModelInfo(&retry_context, v1::GetModelInfoRequest(), &info);
    }
    if (!status.ok()) {
      const bool refused =
          status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
          status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
      Fail(absl::StrCat(
          refused ? "the server at '" : "cannot reach the server at '",
          o.target, refused ? "' refused the call: " : "': ",
          status.error_message(), refused ? " (check --token-file)" : ""));
      return ExitCodeFor(status);
    }
  }

  std::FILE* out = stdout;
  std::string temp_path;
  if (!o.output.empty() && o.output != "-") {
    temp_path = absl::StrCat(o.output, ".tmp.", getpid());
    out = std::fopen(temp_path.c_str(), "wb");
    if (out == nullptr) {
      Fail(absl::StrCat("cannot write '", temp_path, "'"));
      return kExitFailure;
    }
  }
  auto writer = MakeResultWriter(output_options, out);
  writer->Begin(info.name(), info.version());
  Progress progress(!o.quiet && isatty(2), records.size());
  OrderedSink sink(*writer, records.size(), progress);
  grpc::Status status = o.stream ? ClassifyStream(o, *stub, records, sink)
                                 : ClassifyUnary(o, *stub, records, sink);
  if (status.ok()) writer->End();
  progress.Update(sink.written(), /*final=*/true);
  const bool write_failed = std::fflush(out) != 0 || std::ferror(out);
  if (out != stdout) std::fclose(out);
  if (!status.ok() || write_failed) {
    if (!temp_path.empty()) std::remove(temp_path.c_str());
    if (!status.ok()) {
      Fail(absl::StrCat("classification failed after ", sink.written(), " of ",
                        records.size(), " sequences: ",
                        absl::StatusCodeToString(
                            static_cast<absl::StatusCode>(status.error_code())),
                        ": ", status.error_message()));
      return ExitCodeFor(status);
    }
    Fail("cannot write the output");
    return kExitFailure;
  }
  if (!temp_path.empty() &&
      std::rename(temp_path.c_str(), o.output.c_str()) != 0) {
    std::remove(temp_path.c_str());
    Fail(absl::StrCat("cannot rename the output to '", o.output, "'"));
    return kExitFailure;
  }
  return kExitOk;
}

int RunInfo(const Options& o) {
  auto stub = v1::ArgClassifier::NewStub(Connect(o));
  grpc::ClientContext context;
  SetDeadline(context, o);
  v1::ModelInfo info;
  grpc::Status status =
      stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) {
    Fail(absl::StrCat("cannot get model info from '", o.target,
                      "': ", status.error_message()));
    return ExitCodeFor(status);
  }
  if (o.format == "json") {
    std::printf("%s\n", info.metadata_json().c_str());
    return kExitOk;
  }
  std::string classes;
  for (const auto& name : info.classes())
    absl::StrAppend(&classes, classes.empty() ? "" : ", ", name);
  std::printf(
      "name:          %s\nversion:       %s\nformat:        %s\nbackbone:      "
      "%s, %u layers, %u dim, %u heads (%s)\n"
      "max residues:  %u (longer: %s)\ndevice:        %s\nclasses (%d):  "
      "%s\nnon-ARG class: %s\n",
      info.name().c_str(), info.version().c_str(), info.format().c_str(),
      info.backbone().architecture().c_str(), info.backbone().num_layers(),
      info.backbone().embed_dim(), info.backbone().attention_heads(),
      info.backbone().source().c_str(), info.max_residues(),
      info.long_sequence_policy().c_str(), info.device().c_str(),
      info.classes_size(), classes.c_str(), info.nonarg_class().c_str());
  return kExitOk;
}

int RunHealth(const Options& o) {
  auto stub = grpc::health::v1::Health::NewStub(Connect(o));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(
                           std::min(o.deadline_seconds, 10.0) * 1e6)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(o.service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::printf("UNREACHABLE\n");
    Fail(absl::StrCat("health check of '", o.target,
                      "' failed: ", status.error_message()));
    return ExitCodeFor(status) == kExitServerError ? kExitFailure
                                                   : kExitUnavailable;
  }
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                          response.status())
                          .c_str());
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitFailure;
}

}  // namespace
}  // namespace argserve

int main(int argc, char** argv) {
  using argserve::kExitOk;
  using argserve::kExitUsage;
  using argserve::kUsage;
  using argserve::Options;
  using argserve::ParseArgs;
  using argserve::RunClassify;
  using argserve::RunHealth;
  using argserve::RunInfo;
  using argserve::UsageError;
  try {
    Options options = ParseArgs(argc, argv);
    if (options.command == "help") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
    if (options.command == "classify") return RunClassify(options);
    if (options.command == "info") return RunInfo(options);
    return RunHealth(options);
  } catch (const UsageError& e) {
    std::fprintf(stderr,
                 "argserve-cli: %s\nRun 'argserve-cli --help' for usage.\n",
                 e.message.c_str());
    return kExitUsage;
  }
}
