// The /metrics endpoint on loopback: answers, refuses what it does not serve,
// and keeps answering scrapes while many clients hold connections idle or
// send their requests a byte at a time.
#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace argserve {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` and reads the answer until the server closes or `limit`
// passes; returns what arrived.
std::string Exchange(int port, const std::string& request,
                     std::chrono::milliseconds limit) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  const auto give_up = std::chrono::steady_clock::now() + limit;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10) <= 0) continue;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
    if (answer.find("\r\n\r\n") != std::string::npos &&
        answer.find("the_metric") != std::string::npos)
      break;
  }
  close(fd);
  return answer;
}

std::unique_ptr<MetricsHttpServer> StartServer() {
  auto server = MetricsHttpServer::Start(
      "127.0.0.1:0", [] { return std::string("the_metric 1\n"); });
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(MetricsHttp, ServesMetricsAndRefusesTheRest) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string ok = Exchange(
      server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 2000ms);
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(ok, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(ok, HasSubstr("the_metric 1\n"));
  const std::string head =
      Exchange(server->port(), "HEAD /metrics HTTP/1.0\r\n\r\n", 2000ms);
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(head, ::testing::Not(HasSubstr("the_metric")));
  EXPECT_THAT(Exchange(server->port(), "GET /other HTTP/1.0\r\n\r\n", 2000ms),
              StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(
      Exchange(server->port(),
               "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 2000ms),
      StartsWith("HTTP/1.1 405"));
}

TEST(MetricsHttp, ScrapesAnswerWhileManyClientsHoldConnections) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::vector<int> held;
  for (int i = 0; i < 500; ++i) {
    const int fd = Connect(server->port());
    ASSERT_GE(fd, 0) << i;
    held.push_back(fd);
  }
  // Eight clients sending a request head one byte every 100 ms.
  std::atomic<bool> stop{false};
  std::vector<std::thread> slow;
  slow.reserve(8);
  for (int i = 0; i < 8; ++i) {
    slow.emplace_back([&, port = server->port()] {
      const int fd = Connect(port);
      const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: ";
      for (size_t k = 0; !stop && fd >= 0; ++k) {
        send(fd, &head[k % head.size()], 1, MSG_NOSIGNAL);
        std::this_thread::sleep_for(100ms);
      }
      if (fd >= 0) close(fd);
    });
  }
  for (int scrape = 0; scrape < 5; ++scrape) {
    const auto begin = std::chrono::steady_clock::now();
    const std::string answer = Exchange(
        server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1000ms);
    EXPECT_THAT(answer, HasSubstr("the_metric 1")) << "scrape " << scrape;
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
  }
  stop = true;
  for (auto& t : slow) t.join();
  for (int fd : held) close(fd);
}

}  // namespace
}  // namespace argserve
