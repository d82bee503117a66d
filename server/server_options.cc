#include "server/server_options.h"

#include <algorithm>

namespace argserve {
namespace {

absl::Status Invalid(const char* message) {
  return absl::InvalidArgumentError(message);
}

absl::Status Validate(const ServerOptions& o) {
  if (o.model_path.empty()) return Invalid("no model given: pass --model=PATH");
  if (o.batcher.max_batch_size < 1)
    return Invalid("--max_batch_size must be at least 1");
  if (o.batcher.max_batch_tokens < 0)
    return Invalid("--max_batch_tokens must not be negative");
  if (o.batcher.num_workers < 0)
    return Invalid("--workers must not be negative");
  if (o.memory_release_interval.count() < 0)
    return Invalid("--memory_release_interval must not be negative");
  if (o.batcher.max_queue_delay.count() < 0)
    return Invalid("--max_queue_delay must not be negative");
  if (o.service.max_sequences_per_request < 1)
    return Invalid("--max_sequences_per_request must be at least 1");
  if (o.service.max_stream_in_flight < 1)
    return Invalid("--max_stream_in_flight must be at least 1");
  if (o.batcher.max_queue_size < o.service.max_sequences_per_request) {
    return Invalid(
        "--max_queue_size must be at least --max_sequences_per_request, or "
        "large requests could never run");
  }
  if (o.model.blas_threads < 0)
    return Invalid("--blas_threads must not be negative");
  if (o.model.intra_op_threads < 0)
    return Invalid("--intra_op_threads must not be negative");
  if (o.max_message_bytes < 1)
    return Invalid("--max_message_bytes must be at least 1");
  if (o.max_upload_memory != 0 && o.max_upload_memory < o.max_message_bytes) {
    return Invalid(
        "--max_upload_memory must be 0 (unbounded) or at least "
        "--max_message_bytes, or the largest request could never arrive");
  }
  if (o.tls.cert.empty() != o.tls.key.empty())
    return Invalid("--tls_cert and --tls_key go together");
  if (o.tls.cert.empty() && !o.tls.client_ca.empty())
    return Invalid("--tls_client_ca needs --tls_cert and --tls_key");
  return absl::OkStatus();
}

}  // namespace

absl::Status ResolveServerOptions(ServerOptions& options,
                                  const Hardware& hardware) {
  if (absl::Status status = Validate(options); !status.ok()) return status;
  // On CPU a forward's matrix products hardly speed up with more threads at
  // these sizes, so batches run side by side, one per core, on one thread each
  // (bench/results). A GPU runs one batch at a time anyway.
  const int cores = std::max(1, hardware.cores);
  const int cpu_workers =
      options.batcher.num_workers > 0 ? options.batcher.num_workers : cores;
  if (options.model.intra_op_threads == 0)
    options.model.intra_op_threads = std::max(1, cores / cpu_workers);
  if (options.batcher.num_workers == 0)
    options.batcher.num_workers = hardware.gpu ? 1 : cpu_workers;
  if (options.batcher.max_batch_tokens == 0) {
    options.batcher.max_batch_tokens =
        hardware.gpu ? BatcherOptions().max_batch_tokens : kCpuMaxBatchTokens;
  }
  return absl::OkStatus();
}

}  // namespace argserve
