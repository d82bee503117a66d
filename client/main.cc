// argserve-cli: command-line client of argserve. See `argserve-cli --help`.
#include <grpcpp/grpcpp.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
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

// Reads the input as --input says, into the records to classify; those that
// cannot be are kept with their problem unless --strict. Returns an exit code
// when the run cannot go on.
std::optional<int> ReadInput(const ClientOptions& o,
                             std::vector<FastaRecord>& records) {
  const BadRecords bad_records =
      o.strict ? BadRecords::kFail : BadRecords::kKeep;
  for (const std::string& seq : o.seqs) {
    const size_t eq = seq.find('=');
    std::string text =
        eq == std::string::npos
            ? absl::StrCat(">seq", records.size() + 1, "\n", seq, "\n")
            : absl::StrCat(">", seq.substr(0, eq), "\n", seq.substr(eq + 1),
                           "\n");
    if (auto status =
            ParseFasta(text, absl::StrCat("--seq #", &seq - o.seqs.data() + 1),
                       records, ResidueAlphabet::AnyLetter(), bad_records);
        !status.ok()) {
      Fail(std::string{status.message()});
      return kExitBadInput;
    }
  }
  std::vector<std::string> inputs = o.inputs;
  if (inputs.empty() && o.seqs.empty()) inputs.emplace_back("-");
  for (const std::string& path : inputs) {
    if (auto status =
            ReadFasta(path, records, ResidueAlphabet::AnyLetter(), bad_records);
        !status.ok()) {
      Fail(std::string{status.message()});
      return kExitBadInput;
    }
  }
  if (auto status = CheckUniqueIds(records); !status.ok()) {
    Fail(std::string{status.message()});
    return kExitBadInput;
  }
  switch (o.input) {
    case InputType::kProtein:
      if (auto status = CheckNotNucleotide(records); !status.ok()) {
        Fail(std::string{status.message()});
        return kExitBadInput;
      }
      break;
    case InputType::kCds:
      TranslateCodingSequences(records);
      break;
    case InputType::kContigs: {
      std::vector<FastaRecord> contigs, failed;
      for (FastaRecord& record : records)
        (record.problem.empty() ? contigs : failed)
            .push_back(std::move(record));
      auto genes = CallGenes(contigs, o.gene_calling);
      if (!genes.ok()) {
        Fail(std::string{genes.status().message()});
        return genes.status().code() == absl::StatusCode::kFailedPrecondition
                   ? kExitFailure
                   : kExitBadInput;
      }
      records = std::move(failed);
      for (FastaRecord& gene : *genes) records.push_back(std::move(gene));
      break;
    }
  }
  return std::nullopt;
}

int RunClassify(const ClientOptions& o) {
  // Everything is read and checked before anything is sent.
  std::vector<FastaRecord> records;
  if (auto code = ReadInput(o, records)) return *code;

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
  // The model's alphabet and length limit: the files were read before they
  // were known.
  const bool reject_long = o.long_sequences == LongSequences::kReject ||
                           (o.long_sequences == LongSequences::kServerDefault &&
                            info.long_sequence_policy() == "reject");
  CheckAgainstModel(records, info, reject_long);
  std::vector<size_t> send;
  send.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].problem.empty()) {
      send.push_back(i);
    } else if (o.strict) {
      Fail(records[i].problem);
      return kExitBadInput;
    }
  }

  std::FILE* out = stdout;
  std::string temp_path;
  if (!o.output.empty() && o.output != "-") {
    temp_path = absl::StrCat(o.output, ".tmp.", getpid());
    out = absl::EndsWith(o.output, ".gz") ? OpenGzip(temp_path)
                                          : std::fopen(temp_path.c_str(), "wb");
    if (out == nullptr) {
      Fail(absl::StrCat("cannot write '", temp_path, "'"));
      return kExitFailure;
    }
  }
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
  writer->Begin(run);
  Progress progress(!o.quiet && isatty(2), records.size());
  OrderedSink sink(*writer, records, progress);
  for (size_t i = 0; i < records.size(); ++i) {
    if (!records[i].problem.empty()) sink.Put(i, RecordFailure(records[i]));
  }
  grpc::Status status = o.stream ? ClassifyStream(o, *stub, records, send, sink)
                                 : ClassifyUnary(o, *stub, records, send, sink);
  if (status.ok()) writer->End();
  progress.Update(sink.written(), /*final=*/true);
  bool write_failed = std::fflush(out) != 0 || std::ferror(out);
  if (out != stdout) write_failed = std::fclose(out) != 0 || write_failed;
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
  if (sink.failed() > 0) {
    std::fprintf(stderr,
                 "argserve-cli: %zu of %zu records could not be classified "
                 "(their status is in the output); the other %zu were\n",
                 sink.failed(), records.size(), records.size() - sink.failed());
  }
  if (!temp_path.empty() &&
      std::rename(temp_path.c_str(), o.output.c_str()) != 0) {
    std::remove(temp_path.c_str());
    Fail(absl::StrCat("cannot rename the output to '", o.output, "'"));
    return kExitFailure;
  }
  return sink.failed() > 0 ? kExitSomeRecordsFailed : kExitOk;
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
