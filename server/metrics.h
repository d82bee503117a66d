// Prometheus metrics of the server, served in text format on their own port.
#ifndef ARGSERVE_SERVER_METRICS_H_
#define ARGSERVE_SERVER_METRICS_H_

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "server/batcher.h"

namespace argserve {

class Metrics final : public BatcherObserver {
 public:
  // Starts serving /metrics on `address` (host:port); an empty address disables
  // serving (the metrics are still counted, e.g. for tests).
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(
      const std::string& address, const std::string& model_name,
      const std::string& model_version, const std::string& device);
  ~Metrics() override;

  // One finished RPC: its name ("Classify", ...), final status code name,
  // sequences it carried (counted under that code; streams pass 0 and count
  // each sequence by its own status with OnSequences), and its duration.
  void OnRequest(const std::string& rpc, const std::string& code, int sequences,
                 double seconds);
  // A call the server saw cancelled (client cancel or disconnect, deadline,
  // shutdown) before it finished.
  void OnCancelled(const std::string& rpc);
  // Sequences answered with a per-sequence status (streaming), by code name.
  void OnSequences(const std::string& rpc, const std::string& code,
                   int sequences);

  void OnBatch(const BatchStats& stats) override;
  void OnQueueDepth(int64_t depth) override;
  void OnDropped(const absl::Status& reason, int count) override;

  // The metrics in Prometheus text format, as served at /metrics.
  std::string Render() const;

  // Port actually bound (useful when the address asked for port 0); 0 when not
  // serving.
  int port() const;

 private:
  Metrics();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_METRICS_H_
