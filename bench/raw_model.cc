// argserve-raw-bench: the exported model without the server. Same TorchScript
// forward, same thread settings, best-case batching (all sequences known up
// front, sorted by length, packed to a token budget), so the server's overhead
// is a ratio against this. With --workers > 1, that many threads take batches
// from one shared list, as the server's workers do.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "argserve/common/fasta.h"
#include "argserve/common/memory.h"
#include "argserve/model/classifier.h"
#include "argserve/model/tokenizer.h"
#include "bench/json_out.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "", "Model artifact");
ABSL_FLAG(std::string, fasta, "", "Sequences");
ABSL_FLAG(int, sequences, 2000, "Sequences drawn (seeded) from --fasta");
ABSL_FLAG(int, seed, 1, "Random seed");
ABSL_FLAG(int, threads, 1, "Torch intra-op threads");
ABSL_FLAG(int, workers, 1, "Threads running batches concurrently");
ABSL_FLAG(int, blas_threads, 1, "OpenBLAS threads (0 = its default)");
ABSL_FLAG(std::string, precision,
          argserve::NameOf(argserve::TorchClassifierOptions().precision),
          "fp32 or bf16 (autocast)");
ABSL_FLAG(int, max_batch_size, 64, "Most sequences per batch");
ABSL_FLAG(int64_t, max_batch_tokens, 1024,
          "Most padded tokens per batch (the server's default on CPU)");
ABSL_FLAG(std::string, order, "sorted",
          "sorted (batches of similar lengths, best case) or drawn (batches "
          "in the order drawn, padding as it falls)");
// The model's load options default to the server's.
ABSL_FLAG(std::string, graph_passes,
          argserve::NameOf(argserve::TorchClassifierOptions().graph_passes),
          "TorchScript passes at load: freeze, optimize or none");
ABSL_FLAG(std::string, grad_mode,
          argserve::NameOf(argserve::TorchClassifierOptions().grad_mode),
          "inference or no_grad");
ABSL_FLAG(std::string, executor,
          argserve::NameOf(argserve::TorchClassifierOptions().executor),
          "TorchScript executor: profiling or legacy");
ABSL_FLAG(int, rounds, 2, "Passes over the sequences (the first is warm-up)");
ABSL_FLAG(std::string, json_out, "", "Also write the results as JSON here");

namespace argserve {
namespace {

int Run() {
  if (absl::GetFlag(FLAGS_sequences) < 1 ||
      absl::GetFlag(FLAGS_max_batch_size) < 1 ||
      absl::GetFlag(FLAGS_max_batch_tokens) < 1 ||
      absl::GetFlag(FLAGS_rounds) < 1) {
    std::fprintf(stderr,
                 "argserve-raw-bench: --sequences, --max_batch_size, "
                 "--max_batch_tokens and --rounds must be at least 1\n");
    return 2;
  }
  TorchClassifierOptions options;
  options.device = "cpu";
  options.intra_op_threads = absl::GetFlag(FLAGS_threads);
  options.blas_threads = absl::GetFlag(FLAGS_blas_threads);
  auto precision = ParsePrecision(absl::GetFlag(FLAGS_precision));
  auto graph_passes = ParseGraphPasses(absl::GetFlag(FLAGS_graph_passes));
  auto grad_mode = ParseGradMode(absl::GetFlag(FLAGS_grad_mode));
  auto executor = ParseExecutor(absl::GetFlag(FLAGS_executor));
  for (const absl::Status& status : {precision.status(), graph_passes.status(),
                                     grad_mode.status(), executor.status()}) {
    if (!status.ok()) {
      std::fprintf(stderr, "argserve-raw-bench: %s\n",
                   std::string(status.message()).c_str());
      return 2;
    }
  }
  options.precision = *precision;
  options.graph_passes = *graph_passes;
  options.grad_mode = *grad_mode;
  options.executor = *executor;
  const std::string order = absl::GetFlag(FLAGS_order);
  if (order != "sorted" && order != "drawn") {
    std::fprintf(stderr,
                 "argserve-raw-bench: --order must be sorted or drawn\n");
    return 2;
  }
  auto model = LoadTorchClassifier(absl::GetFlag(FLAGS_model), options);
  if (!model.ok()) {
    std::fprintf(stderr, "argserve-raw-bench: %s\n",
                 std::string{model.status().message()}.c_str());
    return 2;
  }
  const ModelMetadata& m = (*model)->metadata();
  std::vector<FastaRecord> records;
  if (auto status = ReadFasta(absl::GetFlag(FLAGS_fasta), records);
      !status.ok()) {
    std::fprintf(stderr, "argserve-raw-bench: %s\n",
                 std::string{status.message()}.c_str());
    return 2;
  }
  // Only sequences the model accepts are drawn; a FASTA without any would
  // otherwise never fill the sample.
  Tokenizer tokenizer(m);
  std::vector<TokenizedSequence> usable;
  for (const FastaRecord& record : records) {
    TokenizedSequence t;
    if (tokenizer.Tokenize(record.residues, LongSequencePolicy::kReject, t)
            .ok())
      usable.push_back(std::move(t));
  }
  if (usable.empty()) {
    std::fprintf(stderr,
                 "argserve-raw-bench: no sequence in %s is usable by the model "
                 "(all invalid or longer than its max_residues %d)\n",
                 absl::GetFlag(FLAGS_fasta).c_str(), m.max_residues);
    return 2;
  }
  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));
  std::uniform_int_distribution<size_t> pick(0, usable.size() - 1);
  std::vector<std::vector<int64_t>> rows;
  int64_t residues = 0;
  while (static_cast<int>(rows.size()) < absl::GetFlag(FLAGS_sequences)) {
    const TokenizedSequence& t = usable[pick(rng)];
    residues += t.residues;
    rows.push_back(t.tokens);
  }
  if (order == "sorted") {
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.size() < b.size(); });
  }
  std::vector<TokenBatch> batches;
  int64_t computed_tokens = 0;
  for (size_t i = 0; i < rows.size();) {
    TokenBatch batch;
    size_t j = i;
    int64_t longest = 0;
    while (j < rows.size() &&
           static_cast<int>(j - i) < absl::GetFlag(FLAGS_max_batch_size)) {
      const int64_t next =
          std::max<int64_t>(longest, static_cast<int64_t>(rows[j].size()));
      if (j > i &&
          BatchColumns(**model, next) * static_cast<int64_t>(j - i + 1) >
              absl::GetFlag(FLAGS_max_batch_tokens))
        break;
      longest = next;
      ++j;
    }
    batch.rows = static_cast<int64_t>(j - i);
    batch.cols = BatchColumns(**model, longest);
    batch.tokens.assign(batch.rows * batch.cols, m.pad_token);
    for (size_t r = i; r < j; ++r)
      std::copy(rows[r].begin(), rows[r].end(),
                batch.tokens.begin() + (r - i) * batch.cols);
    computed_tokens += batch.rows * batch.cols;
    batches.push_back(std::move(batch));
    i = j;
  }
  int64_t tokens = 0;
  for (const auto& r : rows) tokens += static_cast<int64_t>(r.size());
  const int workers = std::max(1, absl::GetFlag(FLAGS_workers));
  double best_seconds = 1e30;
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    std::atomic<size_t> next_batch{0};
    std::atomic<bool> failed{false};
    auto work = [&] {
      for (size_t b = next_batch++; b < batches.size() && !failed;
           b = next_batch++) {
        if (auto result = (*model)->Predict(batches[b]); !result.ok()) {
          std::fprintf(stderr, "argserve-raw-bench: %s\n",
                       std::string{result.status().message()}.c_str());
          failed = true;
        }
      }
    };
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int w = 1; w < workers; ++w) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    if (failed) return 1;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (round > 0 || absl::GetFlag(FLAGS_rounds) == 1)
      best_seconds = std::min(best_seconds, seconds);
  }
  nlohmann::json result = {
      {"model", m.name},
      {"threads", absl::GetFlag(FLAGS_threads)},
      {"workers", workers},
      {"blas_threads", absl::GetFlag(FLAGS_blas_threads)},
      {"max_batch_size", absl::GetFlag(FLAGS_max_batch_size)},
      {"max_batch_tokens", absl::GetFlag(FLAGS_max_batch_tokens)},
      {"precision", absl::GetFlag(FLAGS_precision)},
      {"order", order},
      {"graph_passes", NameOf(options.graph_passes)},
      {"grad_mode", NameOf(options.grad_mode)},
      {"executor", NameOf(options.executor)},
      {"padding_efficiency", static_cast<double>(tokens) / computed_tokens},
      {"allocator", AllocatorName()},
      {"sequences", rows.size()},
      {"batches", batches.size()},
      {"seconds", best_seconds},
      {"sequences_per_second", rows.size() / best_seconds},
      {"residues_per_second", residues / best_seconds},
      {"tokens_per_second", tokens / best_seconds}};
  // Settings other than the defaults, named at the end of the line.
  std::string variant;
  const TorchClassifierOptions defaults;
  if (order != "sorted") variant += ", order=" + order;
  if (options.graph_passes != defaults.graph_passes)
    variant += ", graph_passes=" + NameOf(options.graph_passes);
  if (options.grad_mode != defaults.grad_mode)
    variant += ", grad_mode=" + NameOf(options.grad_mode);
  if (options.executor != defaults.executor)
    variant += ", executor=" + NameOf(options.executor);
  std::printf(
      "raw model %-20s %s workers=%d threads=%d batch<=%-3d tokens<=%-5lld | "
      "%9.1f seq/s "
      "%11.0f res/s %11.0f tokens/s | %zu batches, padding eff %.3f, %s%s\n",
      m.name.c_str(), absl::GetFlag(FLAGS_precision).c_str(), workers,
      absl::GetFlag(FLAGS_threads), absl::GetFlag(FLAGS_max_batch_size),
      static_cast<long long>(absl::GetFlag(FLAGS_max_batch_tokens)),
      rows.size() / best_seconds, residues / best_seconds,
      tokens / best_seconds, batches.size(),
      static_cast<double>(tokens) / computed_tokens, AllocatorName().c_str(),
      variant.c_str());
  if (!WriteJsonFile(absl::GetFlag(FLAGS_json_out), result)) return 1;
  return 0;
}

}  // namespace
}  // namespace argserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "argserve-raw-bench: TorchScript forward throughput without the server");
  absl::ParseCommandLine(argc, argv);
  try {
    return argserve::Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "argserve-raw-bench: %s\n", e.what());
    return 1;
  }
}
