// Every setting of the argserve server in one struct (filled from the flags in
// main.cc), with the one function that fills in hardware-dependent defaults
// and checks the whole.
#ifndef ARGSERVE_SERVER_SERVER_OPTIONS_H_
#define ARGSERVE_SERVER_SERVER_OPTIONS_H_

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "argserve/model/torch_options.h"
#include "server/batcher.h"
#include "server/service_options.h"

namespace argserve {

struct TlsFiles {
  std::string cert;       // PEM certificate chain; with key, TLS is on.
  std::string key;        // PEM private key of cert.
  std::string client_ca;  // PEM CA bundle: client certificates required.
};

struct ServerOptions {
  std::string model_path;
  std::string address = "127.0.0.1:50051";
  std::string metrics_address = "127.0.0.1:9464";  // Empty: no /metrics.
  std::string port_file;
  // intra_op_threads 0: cores / workers.
  TorchClassifierOptions model;
  // num_workers 0: one per core on CPU, 1 on a GPU; max_batch_tokens 0:
  // kCpuMaxBatchTokens on CPU, the batcher's default on a GPU.
  BatcherOptions batcher = [] {
    BatcherOptions automatic;
    automatic.num_workers = 0;
    automatic.max_batch_tokens = 0;
    return automatic;
  }();
  ServiceOptions service;
  std::string auth_token_file;
  TlsFiles tls;
  // After a batch, hand memory freed by the model back to the OS if this long
  // has passed since the last time; zero disables it.
  std::chrono::milliseconds memory_release_interval{0};
  int max_message_bytes = 64 << 20;
  // Most memory gRPC may hold for all calls together (messages being
  // received above all): its resource quota; 0 leaves it unbounded.
  int64_t max_upload_memory = int64_t{256} << 20;
  int max_concurrent_streams = 100;
  int warmup_batches = 3;
  // Nearest-reference evidence from the model's reference set, when it has
  // one.
  bool evidence = true;
  std::chrono::milliseconds grace_period{30000};
  std::chrono::milliseconds shutdown_delay{0};
};

// On CPU, batches beyond about a thousand padded tokens only add padding and
// activations that leave the caches (bench/results/2026-11-25-vm.md); GPUs keep
// the larger batches.
inline constexpr int64_t kCpuMaxBatchTokens = 1024;

struct Hardware {
  int cores = 1;
  bool gpu = false;  // The model will run on a CUDA device.
};

// Fills in the defaults that depend on the hardware, then checks every
// setting; errors name the flag (e.g. "--workers must not be negative").
absl::Status ResolveServerOptions(ServerOptions& options,
                                  const Hardware& hardware);

}  // namespace argserve

#endif  // ARGSERVE_SERVER_SERVER_OPTIONS_H_
