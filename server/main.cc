// argserve: the gRPC server. See `argserve --help` and the README's "Serving"
// section.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "argserve/common/memory.h"
#include "argserve/evidence/nearest_reference.h"
#include "argserve/evidence/reference_set.h"
#include "argserve/model/classifier.h"
#include "server/batcher.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "server/service.h"

#ifndef ARGSERVE_DEFAULT_MODEL
#define ARGSERVE_DEFAULT_MODEL ""
#endif

namespace {

// An installed argserve finds the default model under its prefix
// (PREFIX/bin/argserve, PREFIX/share/argserve/model/); a build uses the
// source tree's.
std::string DefaultModelPath() {
  std::error_code error;
  const std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    const std::filesystem::path installed = exe.parent_path().parent_path() /
                                            "share" / "argserve" / "model" /
                                            "argserve-default.pt";
    if (std::filesystem::exists(installed, error)) return installed.string();
  }
  return ARGSERVE_DEFAULT_MODEL;
}

}  // namespace

ABSL_FLAG(std::string, model, DefaultModelPath(),
          "Model artifact (TorchScript file with model.json inside); default: "
          "the default model, under the install prefix or in the source tree");
ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "gRPC listen address host:port (port 0 picks a free port)");
ABSL_FLAG(std::string, metrics_address, "127.0.0.1:9464",
          "Prometheus /metrics listen address host:port; empty disables it");
ABSL_FLAG(std::string, port_file, "",
          "If set, write 'grpc=PORT metrics=PORT' here once serving (for tests "
          "and scripts using port 0)");
ABSL_FLAG(std::string, device, "auto",
          "auto (CUDA when available), cpu, cuda or cuda:N");
ABSL_FLAG(int, intra_op_threads, 0,
          "Torch intra-op threads per forward; 0 = number of cores / workers");
ABSL_FLAG(int, blas_threads, 1,
          "OpenBLAS threads (process-wide); 0 = OpenBLAS's default of one per "
          "core, which competes with the workers for the same cores");
ABSL_FLAG(std::string, precision,
          argserve::NameOf(argserve::TorchClassifierOptions().precision),
          "fp32, or bf16 (bfloat16 autocast: faster forwards on CPUs with "
          "AMX/AVX512-BF16 and on GPUs; its effect on results is measured in "
          "bench/results)");
ABSL_FLAG(std::string, graph_passes,
          argserve::NameOf(argserve::TorchClassifierOptions().graph_passes),
          "TorchScript passes at load: none, freeze (parameters become "
          "constants) or optimize (freeze, then optimize_for_inference)");
ABSL_FLAG(int, workers, 0,
          "Model worker threads (batches run concurrently); 0 = one per core "
          "on CPU (one thread each), 1 on a GPU");
ABSL_FLAG(int, max_batch_size, argserve::BatcherOptions().max_batch_size,
          "Most sequences per batch (1 disables batching)");
ABSL_FLAG(int64_t, max_batch_tokens, 0,
          "Most padded tokens (rows x longest row) per batch; 0: 1024 on CPU, "
          "16384 on a GPU");
ABSL_FLAG(absl::Duration, max_queue_delay, absl::Milliseconds(2),
          "Longest time a sequence waits for its batch to fill (e.g. 2ms)");
// jemalloc returns unused pages by itself; glibc's arenas need trimming
// (bench/results/*-soak*.md).
ABSL_FLAG(absl::Duration, memory_release_interval,
          argserve::AllocatorName() == "glibc" ? absl::Seconds(1)
                                               : absl::ZeroDuration(),
          "After a batch, return memory freed by the model to the OS if this "
          "long has passed since the last time; 0 disables. Default: 0 with "
          "jemalloc (the default build), 1s with glibc's allocator");
ABSL_FLAG(int64_t, max_queue_size, argserve::BatcherOptions().max_queue_size,
          "Most sequences waiting for a batch; more is rejected with "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_sequences_per_request,
          argserve::ServiceOptions().max_sequences_per_request,
          "Most sequences in one Classify request or ClassifyStream message");
ABSL_FLAG(
    int, max_stream_in_flight, argserve::ServiceOptions().max_stream_in_flight,
    "Most unanswered sequences per stream before the server stops reading it");
ABSL_FLAG(std::string, long_sequences, "reject",
          "Sequences longer than the model's maximum, unless a request asks "
          "otherwise: 'reject' (INVALID_ARGUMENT), 'truncate' (classify the "
          "first max_residues residues, truncated=true) or 'window' "
          "(windows overlapping by half, the one with the highest P(ARG) "
          "answers, windows=N)");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest request message accepted, in bytes");
ABSL_FLAG(int64_t, max_upload_memory,
          argserve::ServerOptions().max_upload_memory,
          "Most memory, in bytes, that gRPC may hold for all calls together "
          "(chiefly messages still arriving); a client that stalls mid-upload "
          "holds at most its share. 0: unbounded");
ABSL_FLAG(absl::Duration, grace_period, absl::Seconds(30),
          "On SIGTERM/SIGINT, how long in-flight calls may take to finish "
          "before they are cancelled");
ABSL_FLAG(absl::Duration, shutdown_delay, absl::ZeroDuration(),
          "On SIGTERM/SIGINT, how long to keep serving while health reports "
          "NOT_SERVING, so load "
          "balancers stop sending first");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM server certificate chain; with --tls_key, serve TLS instead of "
          "plaintext");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(
    std::string, tls_client_ca, "",
    "PEM CA bundle: require client certificates signed by it (mutual TLS)");
ABSL_FLAG(
    std::string, auth_token_file, "",
    "File holding a bearer token that every ArgClassifier call must present "
    "(authorization: Bearer TOKEN); health checks stay open");
ABSL_FLAG(int, max_concurrent_streams, 100,
          "Most concurrent calls (HTTP/2 streams) per client connection");
ABSL_FLAG(bool, evidence, true,
          "Align every protein to the model's reference set: report its "
          "nearest reference, and let a close one decide the call "
          "(docs/evidence.md). false: the model's call alone");
ABSL_FLAG(int, warmup_batches, 3,
          "Batches run at start-up before reporting SERVING");

namespace argserve {
namespace {

constexpr char kServiceName[] = "argserve.v1.ArgClassifier";

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "argserve: error: %s\n", message.c_str());
  // Only called while starting up, before any request is served.
  std::exit(1);  // NOLINT(concurrency-mt-unsafe)
}

std::string ReadSecretFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  return text;
}

template <typename T>
T OrFail(absl::StatusOr<T> value, const char* flag) {
  if (!value.ok()) Fail(absl::StrCat(flag, ": ", value.status().message()));
  return *std::move(value);
}

ServerOptions OptionsFromFlags() {
  ServerOptions o;
  o.model_path = absl::GetFlag(FLAGS_model);
  o.address = absl::GetFlag(FLAGS_address);
  o.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  o.port_file = absl::GetFlag(FLAGS_port_file);
  o.evidence = absl::GetFlag(FLAGS_evidence);
  o.model.device = absl::GetFlag(FLAGS_device);
  o.model.intra_op_threads = absl::GetFlag(FLAGS_intra_op_threads);
  o.model.blas_threads = absl::GetFlag(FLAGS_blas_threads);
  o.model.precision =
      OrFail(ParsePrecision(absl::GetFlag(FLAGS_precision)), "--precision");
  o.model.graph_passes = OrFail(
      ParseGraphPasses(absl::GetFlag(FLAGS_graph_passes)), "--graph_passes");
  o.batcher.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  o.batcher.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  o.batcher.max_queue_delay =
      absl::ToChronoMicroseconds(absl::GetFlag(FLAGS_max_queue_delay));
  o.batcher.max_queue_size = absl::GetFlag(FLAGS_max_queue_size);
  o.batcher.num_workers = absl::GetFlag(FLAGS_workers);
  o.memory_release_interval =
      absl::ToChronoMilliseconds(absl::GetFlag(FLAGS_memory_release_interval));
  const std::string policy = absl::GetFlag(FLAGS_long_sequences);
  if (policy == "reject") {
    o.service.long_sequences = LongSequencePolicy::kReject;
  } else if (policy == "truncate") {
    o.service.long_sequences = LongSequencePolicy::kTruncate;
  } else if (policy == "window") {
    o.service.long_sequences = LongSequencePolicy::kWindow;
  } else {
    Fail(absl::StrCat(
        "--long_sequences must be 'reject', 'truncate' or 'window', not '",
        policy, "'"));
  }
  o.service.max_sequences_per_request =
      absl::GetFlag(FLAGS_max_sequences_per_request);
  o.service.max_stream_in_flight = absl::GetFlag(FLAGS_max_stream_in_flight);
  o.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  o.tls = {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
           absl::GetFlag(FLAGS_tls_client_ca)};
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.max_upload_memory = absl::GetFlag(FLAGS_max_upload_memory);
  o.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  o.warmup_batches = absl::GetFlag(FLAGS_warmup_batches);
  o.grace_period =
      absl::ToChronoMilliseconds(absl::GetFlag(FLAGS_grace_period));
  o.shutdown_delay =
      absl::ToChronoMilliseconds(absl::GetFlag(FLAGS_shutdown_delay));
  return o;
}

std::string ReadAuthToken(const std::string& token_file) {
  if (token_file.empty()) return "";
  std::string token = ReadSecretFile("--auth_token_file", token_file);
  while (!token.empty() &&
         std::isspace(static_cast<unsigned char>(token.back())))
    token.pop_back();
  if (token.empty())
    Fail(absl::StrCat("--auth_token_file: '", token_file, "' is empty"));
  return token;
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(
    const TlsFiles& tls) {
  if (tls.cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      tls.client_ca.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back(
      {ReadSecretFile("--tls_key", tls.key),
       ReadSecretFile("--tls_cert", tls.cert)});
  if (!tls.client_ca.empty()) {
    options.pem_root_certs = ReadSecretFile("--tls_client_ca", tls.client_ca);
  }
  return grpc::SslServerCredentials(options);
}

void Warmup(Classifier& classifier, int batches) {
  const ModelMetadata& m = classifier.metadata();
  const int lengths[] = {64, 256, 512};
  for (int i = 0; i < batches; ++i) {
    TokenBatch batch;
    batch.rows = 8;
    batch.cols =
        BatchColumns(classifier, std::min(lengths[i % 3], m.max_residues) + 2);
    batch.tokens.assign(batch.rows * batch.cols, m.cls_token);
    // Any residue token will do: warm-up is about allocations and kernels, not
    // results.
    const int64_t residue = static_cast<int64_t>(
        std::find(m.alphabet.begin(), m.alphabet.end(), "A") -
        m.alphabet.begin());
    for (int64_t r = 0; r < batch.rows; ++r) {
      for (int64_t c = 1; c + 1 < batch.cols; ++c)
        batch.tokens[r * batch.cols + c] = residue;
      batch.tokens[r * batch.cols + batch.cols - 1] = m.eos_token;
    }
    auto result = classifier.Predict(batch);
    if (!result.ok())
      Fail(absl::StrCat("warm-up failed: ", result.status().message()));
  }
}

int Run() {
  // Signals are taken by sigwait() below; block them before any thread starts
  // so none receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServerOptions options = OptionsFromFlags();
  const Hardware hardware{
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
      DeviceIsGpu(options.model.device)};
  if (absl::Status status = ResolveServerOptions(options, hardware);
      !status.ok())
    Fail(std::string{status.message()});
  options.service.auth_token = ReadAuthToken(options.auth_token_file);
  PeriodicMemoryRelease memory_release(options.memory_release_interval);
  if (options.memory_release_interval.count() > 0)
    options.batcher.after_batch = [&] { memory_release.MaybeRelease(); };

  auto classifier = LoadTorchClassifier(options.model_path, options.model);
  if (!classifier.ok()) Fail(std::string{classifier.status().message()});
  const ModelMetadata& meta = (*classifier)->metadata();
  const std::string release_interval =
      absl::FormatDuration(absl::FromChrono(options.memory_release_interval));
  LogInfo(
      "model loaded",
      {{"path", options.model_path},
       {"name", meta.name},
       {"version", meta.version},
       {"classes", std::to_string(meta.classes.size())},
       {"device", (*classifier)->device()},
       {"precision", NameOf(options.model.precision)},
       {"graph_passes", NameOf(options.model.graph_passes)},
       {"workers", std::to_string(options.batcher.num_workers)},
       {"intra_op_threads", std::to_string(options.model.intra_op_threads)},
       {"forwards", (*classifier)->forwards_side_by_side() ? "side_by_side"
                                                           : "one_at_a_time"},
       {"blas_threads", std::to_string(options.model.blas_threads)},
       {"allocator", AllocatorName()},
       {"memory_release_interval", release_interval}});

  auto created = Metrics::Create(options.metrics_address, meta.name,
                                 meta.version, (*classifier)->device());
  if (!created.ok())
    Fail(absl::StrCat("metrics: ", created.status().message()));
  std::unique_ptr<Metrics> metrics = *std::move(created);

  std::unique_ptr<NearestReferenceFinder> references;
  if (options.evidence && !meta.references_table.empty()) {
    auto table = ParseReferenceTable(meta.references_table,
                                     options.model_path + ":references.tsv");
    if (!table.ok()) Fail(std::string{table.status().message()});
    NearestReferenceOptions search;
    search.max_evalue = meta.evidence.max_evalue;
    search.nonarg_class = meta.nonarg_class;
    references =
        std::make_unique<NearestReferenceFinder>(*std::move(table), search);
    LogInfo("reference set loaded",
            {{"references", std::to_string(references->references().size())},
             {"version", meta.references->version}});
  }

  Batcher batcher(options.batcher, classifier->get(), metrics.get());
  ArgClassifierService service(options.service, classifier->get(), &batcher,
                               metrics.get(), references.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  const std::string& address = options.address;
  builder.AddListeningPort(address, ServerCredentials(options.tls), &grpc_port);
  // Without this a second server could bind the same port and steal half of the
  // traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  if (options.max_upload_memory > 0) {
    grpc::ResourceQuota quota("argserve");
    quota.Resize(static_cast<size_t>(options.max_upload_memory));
    builder.SetResourceQuota(quota);
  }
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0)
    Fail(absl::StrCat("cannot listen on '", address,
                      "' (address in use or invalid)"));
  auto* health = server->GetHealthCheckService();
  health->SetServingStatus(false);

  Warmup(**classifier, options.warmup_batches);
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);

  if (!options.port_file.empty()) {
    std::ofstream(options.port_file)
        << "grpc=" << grpc_port << " metrics=" << metrics->port() << "\n";
  }
  LogInfo(
      "serving",
      {{"address", address},
       {"grpc_port", std::to_string(grpc_port)},
       {"metrics_port", std::to_string(metrics->port())},
       {"max_batch_size", std::to_string(options.batcher.max_batch_size)},
       {"max_batch_tokens", std::to_string(options.batcher.max_batch_tokens)},
       {"workers", std::to_string(options.batcher.num_workers)}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LogInfo("draining",
          {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
           {"queued", std::to_string(batcher.queue_depth())}});
  health->SetServingStatus(false);
  health->SetServingStatus(kServiceName, false);
  std::this_thread::sleep_for(options.shutdown_delay);
  // Stops accepting calls and waits for the running ones (their work is in the
  // batcher) until the grace period ends; what is still running then is
  // cancelled.
  server->Shutdown(std::chrono::system_clock::now() + options.grace_period);
  batcher.Stop();
  LogInfo("stopped");
  return 0;
}

}  // namespace
}  // namespace argserve

namespace argserve {
namespace {

// --version: the server's, and the model --model names when it loads.
std::string VersionText() {
  std::string text = absl::StrCat("argserve ", ARGSERVE_VERSION, "\n");
  TorchClassifierOptions cpu;
  cpu.device = "cpu";
  auto classifier = LoadTorchClassifier(absl::GetFlag(FLAGS_model), cpu);
  if (classifier.ok()) {
    const ModelMetadata& m = (*classifier)->metadata();
    absl::StrAppend(&text, "model ", m.name, " ", m.version, " (",
                    absl::GetFlag(FLAGS_model), ")");
    if (m.references)
      absl::StrAppend(&text, ", reference set ", m.references->version);
    absl::StrAppend(&text, "\n");
  } else {
    absl::StrAppend(&text, "model: ", classifier.status().message(), "\n");
  }
  return text;
}

}  // namespace
}  // namespace argserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gRPC service classifying protein sequences into "
      "antibiotic-resistance classes.\n"
      "Usage: argserve [--model=PATH] [--address=HOST:PORT] [flags]");
  absl::FlagsUsageConfig usage;
  // --help and --helpshort list this program's flags (not Abseil's own).
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.version_string = argserve::VersionText;
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  return argserve::Run();
}
