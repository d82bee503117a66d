// argserve-cli: command-line client of argserve. See `argserve-cli --help`.
#include <grpcpp/grpcpp.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "argserve/common/fasta.h"
#include "argserve/v1/argserve.grpc.pb.h"
#include "client/classify.h"
#include "client/connection.h"
#include "client/input.h"
#include "client/options.h"
#include "client/output.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace argserve {
namespace {

void Fail(const std::string& message) {
  std::fprintf(stderr, "argserve-cli: error: %s\n", message.c_str());
}

// A FILE* whose bytes go through zlib into a gzip file: the writers stay
// plain stdio.
std::FILE* OpenGzip(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "wb6");
  if (gz == nullptr) return nullptr;
  cookie_io_functions_t io{};
  io.write = [](void* cookie, const char* data, size_t size) -> ssize_t {
    const int n =
        gzwrite(static_cast<gzFile>(cookie), data, static_cast<unsigned>(size));
    return n > 0 ? n : -1;
  };
  io.close = [](void* cookie) {
    return gzclose(static_cast<gzFile>(cookie)) == Z_OK ? 0 : EOF;
  };
  std::FILE* file = fopencookie(gz, "w", io);
  if (file == nullptr) gzclose(gz);
  return file;
}

// Records read, checked and classified at a time: memory stays flat for any
// input size.
constexpr size_t kChunkRecords = 8192;

int BadInputExit(const absl::Status& status) {
  Fail(std::string{status.message()});
  return status.code() == absl::StatusCode::kFailedPrecondition ? kExitFailure
                                                                : kExitBadInput;
}

int RunClassify(const ClientOptions& o) {
  InputSpec spec;
  spec.seqs = o.seqs;
  spec.files = o.inputs;
  spec.type = o.input;
  spec.gene_calling = o.gene_calling;
  spec.bad_records = o.strict ? BadRecords::kFail : BadRecords::kKeep;
  InputReader input(spec);
  // The first chunk (all of a small input) is read and checked before the
  // server is contacted.
  std::vector<FastaRecord> chunk;
  if (absl::Status status = input.Next(kChunkRecords, chunk); !status.ok())
    return BadInputExit(status);

  auto channel = Connect(o.connection);
  auto stub = v1::ArgClassifier::NewStub(channel);
  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    PrepareContext(context, o.connection);
    grpc::Status status =
        stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
    if (!status.ok()) {
      const bool refused =
          status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
          status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
      Fail(absl::StrCat(
          refused ? "the server at '" : "cannot reach the server at '",
          o.connection.target, refused ? "' refused the call: " : "': ",
          status.error_message(), refused ? " (check --token-file)" : ""));
      return ExitCodeFor(status);
    }
  }
  const bool reject_long = o.long_sequences == LongSequences::kReject ||
                           (o.long_sequences == LongSequences::kServerDefault &&
                            info.long_sequence_policy() == "reject");
  // The model's alphabet and length limit apply once the model is known;
  // with --strict, a record they refuse ends the run.
  const auto check_chunk = [&]() -> std::optional<std::string> {
    CheckAgainstModel(chunk, info, reject_long);
    if (o.strict) {
      for (const FastaRecord& record : chunk)
        if (!record.problem.empty()) return record.problem;
    }
    return std::nullopt;
  };
  if (auto problem = check_chunk()) {
    Fail(*problem);
    return kExitBadInput;
  }

  // Results go to OUTPUT.partial, renamed to OUTPUT when the run is
  // complete; an interrupted run's partial file is what --resume continues.
  std::FILE* out = stdout;
  std::string temp_path;
  std::unordered_set<std::string> done_ids;
  bool continuing = false;
  if (!o.output.empty() && o.output != "-") {
    temp_path = absl::StrCat(o.output, ".partial");
    if (o.resume) {
      std::ifstream in(temp_path, std::ios::binary);
      if (in) {
        std::stringstream text;
        text << in.rdbuf();
        const PartialOutput partial =
            ReadPartialOutput(text.str(), o.output_options.format);
        std::error_code error;
        std::filesystem::resize_file(temp_path, partial.complete_bytes, error);
        if (error) {
          Fail(absl::StrCat("cannot continue '", temp_path,
                            "': ", error.message()));
          return kExitFailure;
        }
        done_ids.insert(partial.ids.begin(), partial.ids.end());
        continuing = partial.complete_bytes > 0;
        std::fprintf(stderr,
                     "argserve-cli: continuing %s: %zu records already done\n",
                     temp_path.c_str(), done_ids.size());
      }
    }
    out = absl::EndsWith(o.output, ".gz")
              ? OpenGzip(temp_path)
              : std::fopen(temp_path.c_str(), continuing ? "ab" : "wb");
    if (out == nullptr) {
      Fail(absl::StrCat("cannot write '", temp_path, "'"));
      return kExitFailure;
    }
  }
  // Nothing is written to -o when the run does not complete; what was done
  // stays in the partial file for --resume.
  const auto abandon = [&](int code) {
    if (out != stdout) {
      std::fclose(out);
      const bool resumable =
          o.output_options.format == OutputFormat::kTsv ||
          o.output_options.format == OutputFormat::kJsonLines;
      if (resumable && !absl::EndsWith(o.output, ".gz")) {
        std::fprintf(stderr,
                     "argserve-cli: the results so far are in %s; run again "
                     "with --resume to continue\n",
                     temp_path.c_str());
      } else {
        std::remove(temp_path.c_str());
      }
    }
    return code;
  };
  // Records an earlier run already wrote.
  const auto drop_done = [&](std::vector<FastaRecord>& records) {
    if (done_ids.empty()) return;
    records.erase(std::remove_if(records.begin(), records.end(),
                                 [&](const FastaRecord& record) {
                                   return done_ids.count(record.id) > 0;
                                 }),
                  records.end());
  };
  drop_done(chunk);
  auto writer = MakeResultWriter(o.output_options, out);
  RunInfo run;
  run.software_version = ARGSERVE_VERSION;
  run.server_version = info.server_version();
  run.model_name = info.name();
  run.model_version = info.version();
  run.reference_set_version = info.references().version();
  std::vector<std::string> input_names;
  for (const std::string& path : o.inputs)
    input_names.push_back(HamronizationInputName(path));
  if (input_names.empty())
    input_names.emplace_back(o.seqs.empty() ? "stdin" : "command_line");
  run.input_file_name = absl::StrJoin(input_names, ",");
  run.continuing = continuing;
  writer->Begin(run);

  // The total is known only at the end: the progress line counts.
  Progress progress(!o.quiet && isatty(2), 0);
  size_t total = 0;
  size_t failed = 0;
  while (true) {
    std::vector<size_t> send;
    send.reserve(chunk.size());
    for (size_t i = 0; i < chunk.size(); ++i)
      if (chunk[i].problem.empty()) send.push_back(i);
    OrderedSink sink(*writer, chunk, progress, total);
    for (size_t i = 0; i < chunk.size(); ++i) {
      if (!chunk[i].problem.empty()) sink.Put(i, RecordFailure(chunk[i]));
    }
    grpc::Status status = o.stream ? ClassifyStream(o, *stub, chunk, send, sink)
                                   : ClassifyUnary(o, *stub, chunk, send, sink);
    if (!status.ok()) {
      progress.Update(total + sink.written(), /*final=*/true);
      Fail(absl::StrCat("classification failed after ", total + sink.written(),
                        " sequences: ",
                        absl::StatusCodeToString(
                            static_cast<absl::StatusCode>(status.error_code())),
                        ": ", status.error_message()));
      return abandon(ExitCodeFor(status));
    }
    total += chunk.size();
    failed += sink.failed();
    if (input.done()) break;
    chunk.clear();
    if (absl::Status read = input.Next(kChunkRecords, chunk); !read.ok())
      return abandon(BadInputExit(read));
    drop_done(chunk);
    if (auto problem = check_chunk()) {
      Fail(*problem);
      return abandon(kExitBadInput);
    }
  }
  writer->End();
  progress.Update(total, /*final=*/true);
  bool write_failed = std::fflush(out) != 0 || std::ferror(out);
  if (out != stdout) write_failed = std::fclose(out) != 0 || write_failed;
  if (write_failed) {
    Fail("cannot write the output");
    return kExitFailure;
  }
  if (failed > 0) {
    std::fprintf(stderr,
                 "argserve-cli: %zu of %zu records could not be classified "
                 "(their status is in the output); the other %zu were\n",
                 failed, total, total - failed);
  }
  if (!temp_path.empty() &&
      std::rename(temp_path.c_str(), o.output.c_str()) != 0) {
    std::remove(temp_path.c_str());
    Fail(absl::StrCat("cannot rename the output to '", o.output, "'"));
    return kExitFailure;
  }
  return failed > 0 ? kExitSomeRecordsFailed : kExitOk;
}

int RunInfo(const ClientOptions& o) {
  auto stub = v1::ArgClassifier::NewStub(Connect(o.connection));
  grpc::ClientContext context;
  PrepareContext(context, o.connection);
  v1::ModelInfo info;
  grpc::Status status =
      stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) {
    Fail(absl::StrCat("cannot get model info from '", o.connection.target,
                      "': ", status.error_message()));
    return ExitCodeFor(status);
  }
  if (o.info_json) {
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
  if (info.has_references()) {
    std::printf(
        "references:    %u (version %s; %s)\nevidence:      a reference "
        "decides at >= %.0f%% identity and >= %.0f%% of its length, E <= "
        "%g\n",
        info.references().count(), info.references().version().c_str(),
        info.references().source().c_str(),
        info.evidence().reference_min_identity_percent(),
        info.evidence().reference_min_coverage_percent(),
        info.evidence().max_evalue());
    if (info.evidence().has_homolog_min_arg_probability()) {
      std::printf(
          "               a distant ARG reference (same coverage) decides "
          "when P(ARG) >= %.2f\n",
          info.evidence().homolog_min_arg_probability());
    }
    if (info.evidence().has_novel_min_arg_probability()) {
      std::printf(
          "               an ARG call without an ARG reference nearest "
          "needs P(ARG) >= %.2f\n",
          info.evidence().novel_min_arg_probability());
    }
  } else {
    std::printf("references:    none (no nearest-reference evidence)\n");
  }
  std::printf("server:        argserve %s\n", info.server_version().c_str());
  return kExitOk;
}

int RunHealth(const ClientOptions& o) {
  auto stub = grpc::health::v1::Health::NewStub(Connect(o.connection));
  grpc::ClientContext context;
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::microseconds(static_cast<int64_t>(
          std::min(o.connection.deadline_seconds, 10.0) * 1e6)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(o.service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::printf("UNREACHABLE\n");
    Fail(absl::StrCat("health check of '", o.connection.target,
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

int Run(const ClientOptions& options) {
  switch (options.command) {
    case Command::kHelp:
      std::fputs(options.help.c_str(), stdout);
      return kExitOk;
    case Command::kVersion:
      std::printf("argserve-cli %s\n", ARGSERVE_VERSION);
      return kExitOk;
    case Command::kClassify:
      return RunClassify(options);
    case Command::kInfo:
      return RunInfo(options);
    case Command::kHealth:
      return RunHealth(options);
  }
  return kExitFailure;
}

}  // namespace
}  // namespace argserve

int main(int argc, char** argv) {
  try {
    // Read while parsing arguments, before any thread starts.
    const char* env_target =
        std::getenv("ARGSERVE_TARGET");  // NOLINT(concurrency-mt-unsafe)
    return argserve::Run(argserve::ParseClientOptions(argc, argv, env_target));
  } catch (const argserve::UsageError& e) {
    std::fprintf(stderr,
                 "argserve-cli: %s\nRun 'argserve-cli --help' for usage.\n",
                 e.message.c_str());
    return argserve::kExitUsage;
  }
}
