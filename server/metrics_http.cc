#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace argserve {
namespace {

// A connection that sends nothing for this long is closed.
constexpr unsigned kIdleTimeoutSeconds = 5;
// Held connections beyond this are refused at accept; scrapes are few.
constexpr unsigned kMaxConnections = 4096;

// libmicrohttpd sends no body in answer to HEAD, with the GET's length.
MHD_Result Reply(MHD_Connection* connection, unsigned status,
                 const std::string& content_type, const std::string& body) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          content_type.c_str());
  const MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, std::function<std::string()> render) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                           std::to_string(port).c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "': ", gai_strerror(rc)));
  }
  int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return absl::InternalError(absl::StrCat(
        "metrics socket: ", std::generic_category().message(errno)));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    freeaddrinfo(found);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", address,
                     "': ", std::generic_category().message(error)));
  }
  freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  const int bound_port =
      bound.ss_family == AF_INET6
          ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
          : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(fd, bound_port, std::move(render)));
  // One event-driven thread: a slow or silent client holds a connection, not
  // the thread, so scrapes are answered while others dawdle.
  server->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, nullptr, nullptr,
      &MetricsHttpServer::Handle, server.get(), MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutSeconds,
      MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::InternalError(
        absl::StrCat("metrics: libmicrohttpd could not serve '", address, "'"));
  }
  return server;
}

MHD_Result MetricsHttpServer::Handle(void* self, MHD_Connection* connection,
                                     const char* url, const char* method,
                                     const char* /*version*/,
                                     const char* /*upload_data*/,
                                     size_t* upload_data_size,
                                     void** request_state) {
  // The first call only announces the request head; the answer comes on the
  // next, once any body has been read (and ignored).
  static int announced;
  if (*request_state == nullptr) {
    *request_state = &announced;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  const std::string verb = method;
  if (verb != "GET" && verb != "HEAD") {
    return Reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                 "only GET\n");
  }
  if (std::strcmp(url, "/metrics") != 0) {
    return Reply(connection, MHD_HTTP_NOT_FOUND, "text/plain",
                 "only /metrics is served\n");
  }
  const auto* server = static_cast<const MetricsHttpServer*>(self);
  return Reply(connection, MHD_HTTP_OK,
               "text/plain; version=0.0.4; charset=utf-8", server->render_());
}

MetricsHttpServer::MetricsHttpServer(int listen_fd, int port,
                                     std::function<std::string()> render)
    : listen_fd_(listen_fd), port_(port), render_(std::move(render)) {}

MetricsHttpServer::~MetricsHttpServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
  close(listen_fd_);
}

}  // namespace argserve
