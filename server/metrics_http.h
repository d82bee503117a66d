// The HTTP endpoint for Prometheus scrapes: GET /metrics answers the text
// exposition format. Served by libmicrohttpd's event loop, so slow or idle
// clients cannot hold scrapes up.
//
// prometheus-cpp's own exposer (civetweb) cannot start its worker threads in a
// process that also loads LibTorch on CPUs with AMX: oneDNN enables AMX state
// at load time, which raises the minimum thread stack size above civetweb's
// fixed one. libmicrohttpd's thread takes the system's default stack.
#ifndef ARGSERVE_SERVER_METRICS_HTTP_H_
#define ARGSERVE_SERVER_METRICS_HTTP_H_

#include <microhttpd.h>

#include <functional>
#include <memory>
#include <string>

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
  MetricsHttpServer(int listen_fd, int port,
                    std::function<std::string()> render);
  static MHD_Result Handle(void* self, MHD_Connection* connection,
                           const char* url, const char* method,
                           const char* version, const char* upload_data,
                           size_t* upload_data_size, void** request_state);

  const int listen_fd_;
  const int port_;
  const std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace argserve

#endif  // ARGSERVE_SERVER_METRICS_HTTP_H_
