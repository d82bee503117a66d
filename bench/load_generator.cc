// argserve-bench: a gRPC load generator for argserve.
//
// Closed loop: --concurrency callers, each sends a request and waits for its
// answer before the next. Open loop: requests start on a fixed schedule (--rate
// per second) whatever the server does, and latency is measured from the
// scheduled start, so a slow server cannot hide its queueing (no coordinated
// omission).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "argserve/common/fasta.h"
#include "argserve/v1/argserve.grpc.pb.h"
#include "bench/json_out.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "argserve address");
ABSL_FLAG(std::string, metrics_url_port, "",
          "Port of the server's /metrics on 127.0.0.1, to report batch size "
          "and padding efficiency");
ABSL_FLAG(std::string, fasta, "",
          "Sequences to send (drawn at random, seeded)");
ABSL_FLAG(std::string, mode, "closed",
          "closed (concurrent callers) or open (fixed arrival rate)");
ABSL_FLAG(int, concurrency, 8, "Closed loop: concurrent callers");
ABSL_FLAG(double, rate, 10, "Open loop: requests started per second");
ABSL_FLAG(int, sequences_per_request, 1, "Sequences per Classify request");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(20), "Measured time");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(3),
          "Unmeasured time before it");
ABSL_FLAG(int, max_residues, 1022, "Skip longer sequences");
ABSL_FLAG(int, seed, 1, "Random seed for drawing sequences");
ABSL_FLAG(std::string, json_out, "", "Also write the results as JSON here");
ABSL_FLAG(std::string, label, "", "Free text stored with the results");

namespace argserve {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Sample {
  double latency_seconds;
  int sequences;
  int64_t residues;
  grpc::StatusCode code;
};

struct Recorder {
  std::mutex mu;
  std::vector<Sample> samples;
  void Add(const Sample& sample) {
    std::lock_guard<std::mutex> lock(mu);
    samples.push_back(sample);
  }
};

// Reads a counter or gauge sum from Prometheus text; labels are matched as a
// prefix.
std::map<std::string, double> ScrapeMetrics(const std::string& port) {
  std::map<std::string, double> values;
  if (port.empty()) return values;
  const std::string command =
      absl::StrCat("curl -s --max-time 5 http://127.0.0.1:", port, "/metrics");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return values;
  char line[4096];
  while (fgets(line, sizeof(line), pipe) != nullptr) {
    std::string text(line);
    if (text.empty() || text[0] == '#') continue;
    const size_t space = text.rfind(' ');
    double value = 0;
    if (space != std::string::npos &&
        absl::SimpleAtod(text.substr(space + 1), &value)) {
      values[text.substr(0, space)] = value;
    }
  }
  pclose(pipe);
  return values;
}

double Percentile(std::vector<double> sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t index =
      std::min(sorted.size() - 1,
               static_cast<size_t>(std::llround(q * (sorted.size() - 1))));
  return sorted[index];
}

int Run() {
  std::vector<FastaRecord> records;
  if (auto status = ReadFasta(absl::GetFlag(FLAGS_fasta), records);
      !status.ok()) {
    std::fprintf(stderr, "argserve-bench: %s\n",
                 std::string{status.message()}.c_str());
    return 2;
  }
  const int max_residues = absl::GetFlag(FLAGS_max_residues);
  records.erase(std::remove_if(records.begin(), records.end(),
                               [&](const FastaRecord& r) {
                                 return static_cast<int>(r.residues.size()) >
                                        max_residues;
                               }),
                records.end());
  if (records.empty()) {
    std::fprintf(stderr, "argserve-bench: no usable sequences\n");
    return 2;
  }
  grpc::ChannelArguments arguments;
  arguments.SetLoadBalancingPolicyName("round_robin");
  arguments.SetMaxReceiveMessageSize(-1);
  auto channel =
      grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target),
                                grpc::InsecureChannelCredentials(), arguments);
  auto stub = v1::ArgClassifier::NewStub(channel);

  const int per_request = absl::GetFlag(FLAGS_sequences_per_request);
  std::atomic<uint64_t> request_counter{0};
  const int seed = absl::GetFlag(FLAGS_seed);
  auto make_request = [&](uint64_t n, int64_t& residues) {
    std::mt19937_64 rng(seed * 1000003ULL + n);
    std::uniform_int_distribution<size_t> pick(0, records.size() - 1);
    v1::ClassifyRequest request;
    residues = 0;
    for (int i = 0; i < per_request; ++i) {
      const FastaRecord& r = records[pick(rng)];
      auto* s = request.add_sequences();
      s->set_id(absl::StrCat(i));
      s->set_residues(r.residues);
      residues += static_cast<int64_t>(r.residues.size());
    }
    return request;
  };

  const auto warmup = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_warmup));
  const auto duration =
      absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_duration));
  const auto start = SteadyClock::now();
  const auto measure_from = start + warmup;
  const auto stop_at = measure_from + duration;
  Recorder recorder;
  std::map<std::string, double> metrics_before;
  std::thread scrape_before([&] {
    std::this_thread::sleep_until(measure_from);
    metrics_before = ScrapeMetrics(absl::GetFlag(FLAGS_metrics_url_port));
  });

  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "closed") {
    std::vector<std::thread> callers;
    callers.reserve(absl::GetFlag(FLAGS_concurrency));
    for (int c = 0; c < absl::GetFlag(FLAGS_concurrency); ++c) {
      callers.emplace_back([&] {
        while (SteadyClock::now() < stop_at) {
          int64_t residues = 0;
          v1::ClassifyRequest request =
              make_request(request_counter.fetch_add(1), residues);
          v1::ClassifyResponse response;
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::minutes(5));
          const auto begin = SteadyClock::now();
          grpc::Status status = stub->Classify(&context, request, &response);
          const auto end = SteadyClock::now();
          // Throughput is completions per second of the window; requiring
          // the start inside it too would drop about latency/duration of
          // them and understate a server whose latency is long.
          if (end >= measure_from && end <= stop_at) {
            recorder.Add({std::chrono::duration<double>(end - begin).count(),
                          per_request, residues, status.error_code()});
          }
        }
      });
    }
    for (auto& t : callers) t.join();
  } else if (mode == "open") {
    const double rate = absl::GetFlag(FLAGS_rate);
    std::mutex mu;
    std::condition_variable cv;
    int outstanding = 0;
    for (uint64_t n = 0;; ++n) {
      const auto scheduled =
          start + std::chrono::duration_cast<SteadyClock::duration>(
                      std::chrono::duration<double>(n / rate));
      if (scheduled >= stop_at) break;
      std::this_thread::sleep_until(scheduled);
      struct Call {
        grpc::ClientContext context;
        v1::ClassifyRequest request;
        v1::ClassifyResponse response;
        int64_t residues = 0;
      };
      auto* call = new Call();
      call->request = make_request(n, call->residues);
      call->context.set_deadline(std::chrono::system_clock::now() +
                                 std::chrono::minutes(5));
      {
        std::lock_guard<std::mutex> lock(mu);
        ++outstanding;
      }
      stub->async()->Classify(
          &call->context, &call->request, &call->response,
          [&, call, scheduled](const grpc::Status& s) {
            const auto end = SteadyClock::now();
            // Latency counts from the scheduled start: time lost before sending
            // is the server's too.
            if (scheduled >= measure_from) {
              recorder.Add(
                  {std::chrono::duration<double>(end - scheduled).count(),
                   per_request, call->residues, s.error_code()});
            }
            delete call;
            std::lock_guard<std::mutex> lock(mu);
            if (--outstanding == 0) cv.notify_all();
          });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
  } else {
    std::fprintf(stderr, "argserve-bench: --mode must be closed or open\n");
    return 2;
  }
  scrape_before.join();
  const auto metrics_after =
      ScrapeMetrics(absl::GetFlag(FLAGS_metrics_url_port));

  // The measured window: closed loop counts calls that ended inside it (the
  // callers are already busy when it opens, after the warm-up); open loop
  // counts calls scheduled inside it (their answers may arrive later).
  const double seconds = std::chrono::duration<double>(duration).count();
  std::vector<double> latencies;
  std::map<std::string, int> codes;
  int64_t sequences = 0;
  int64_t residues = 0;
  for (const Sample& s : recorder.samples) {
    codes[absl::StatusCodeToString(static_cast<absl::StatusCode>(s.code))]++;
    if (s.code == grpc::StatusCode::OK) {
      latencies.push_back(s.latency_seconds);
      sequences += s.sequences;
      residues += s.residues;
    }
  }
  std::sort(latencies.begin(), latencies.end());
  const double mean_latency =
      latencies.empty()
          ? 0
          : std::accumulate(latencies.begin(), latencies.end(), 0.0) /
                static_cast<double>(latencies.size());
  auto delta = [&](const std::string& key) {
    auto a = metrics_after.find(key);
    auto b = metrics_before.find(key);
    return (a == metrics_after.end() ? 0 : a->second) -
           (b == metrics_before.end() ? 0 : b->second);
  };
  const double batches = delta("argserve_batch_size_count");
  const double batch_rows = delta("argserve_batch_size_sum");
  const double real_tokens = delta("argserve_tokens_total{kind=\"real\"}");
  const double computed_tokens =
      delta("argserve_tokens_total{kind=\"computed\"}");

  nlohmann::json result = {
      {"label", absl::GetFlag(FLAGS_label)},
      {"mode", mode},
      {"concurrency", mode == "closed" ? absl::GetFlag(FLAGS_concurrency) : 0},
      {"rate", mode == "open" ? absl::GetFlag(FLAGS_rate) : 0},
      {"sequences_per_request", per_request},
      {"seconds", seconds},
      {"requests_ok", latencies.size()},
      {"codes", codes},
      {"sequences_per_second", sequences / seconds},
      {"residues_per_second", residues / seconds},
      {"latency_seconds",
       {{"mean", mean_latency},
        {"p50", Percentile(latencies, 0.5)},
        {"p90", Percentile(latencies, 0.9)},
        {"p99", Percentile(latencies, 0.99)},
        {"max", latencies.empty() ? 0 : latencies.back()}}},
      {"server_mean_batch_size", batches > 0 ? batch_rows / batches : 0},
      {"server_padding_efficiency",
       computed_tokens > 0 ? real_tokens / computed_tokens : 0},
  };
  std::printf(
      "%-8s conc=%-4d rate=%-7.1f seq/req=%-3d | %9.1f seq/s %11.0f res/s | "
      "p50 %7.1f ms  p90 %7.1f ms  "
      "p99 %7.1f ms  max %7.1f ms | batch %5.1f  padding eff %.3f | ",
      mode.c_str(), mode == "closed" ? absl::GetFlag(FLAGS_concurrency) : 0,
      mode == "open" ? absl::GetFlag(FLAGS_rate) : 0.0, per_request,
      sequences / seconds, residues / seconds, 1e3 * Percentile(latencies, 0.5),
      1e3 * Percentile(latencies, 0.9), 1e3 * Percentile(latencies, 0.99),
      1e3 * (latencies.empty() ? 0 : latencies.back()),
      batches > 0 ? batch_rows / batches : 0,
      computed_tokens > 0 ? real_tokens / computed_tokens : 0);
  for (const auto& [code, count] : codes)
    std::printf("%s=%d ", code.c_str(), count);
  std::printf("\n");
  if (!WriteJsonFile(absl::GetFlag(FLAGS_json_out), result)) return 1;
  return codes.size() == 1 && codes.count("OK") == 1 ? 0 : 1;
}

}  // namespace
}  // namespace argserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "argserve-bench: load generator for argserve (closed or open loop)");
  absl::ParseCommandLine(argc, argv);
  try {
    return argserve::Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "argserve-bench: %s\n", e.what());
    return 1;
  }
}
