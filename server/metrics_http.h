// A minimal HTTP/1.0 endpoint for Prometheus scrapes: GET /metrics answers the
// text exposition format.
//
// prometheus-cpp's own exposer (civetweb) cannot start its worker threads in a
// process that also loads LibTorch on CPUs with AMX: oneDNN enables AMX state
// at load time, which raises the minimum thread stack size above civetweb's
// fixed one. Scrapes are rare and small, so one thread serving one connection
// at a time is enough.
#ifndef ARGSERVE_SERVER_METRICS_HTTP_H_
#define ARGSERVE_SERVER_METRICS_HTTP_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace argserve {

class MetricsHttpServer {
 public:
  // Listens on host:port (port 0 picks a free port) and serves `render()` at
  // /metrics.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::function<std::string()> render);
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  MetricsHttpServer(int listen_fd, int wake_fd_read, int wake_fd_write,
                    int port, std::function<std::string()> render);
  void Serve();
  void HandleConnection(int fd);

  const int listen_fd_;
  const int wake_read_;
  const int wake_write_;
  const int port_;
  const std::function<std::string()> render_;
  std::thread thread_;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_METRICS_HTTP_H_
