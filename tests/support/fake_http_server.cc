#include "tests/support/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace infergate::testing {
namespace {

// A socket bound to 127.0.0.1:0; its port in *port.
int bind_loopback(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

FakeHttpServer::FakeHttpServer(std::string raw) : answer_(std::move(raw)) {
  listen_fd_ = bind_loopback(&port_);
  if (::listen(listen_fd_, 16) != 0) throw std::runtime_error("listen failed");
  thread_ = std::thread([this] { serve(); });
}

FakeHttpServer::~FakeHttpServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  for (int fd : held_) ::close(fd);
}

void FakeHttpServer::set_answer(std::string raw) {
  std::lock_guard<std::mutex> lock(mu_);
  answer_ = std::move(raw);
}

std::string FakeHttpServer::last_request() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_request_;
}

std::string FakeHttpServer::ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

void FakeHttpServer::serve() {
  while (!stop_) {
    pollfd p{.fd = listen_fd_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // Read the request's headers (each poll bounded, so stop_ is seen).
    std::string request;
    while (!stop_ && request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
      pollfd r{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&r, 1, 20) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    std::string answer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_request_ = request.substr(0, request.find("\r\n\r\n"));
      answer = answer_;
    }
    ++requests_;
    if (silent_) {
      held_.push_back(fd);
      continue;
    }
    size_t sent = 0;
    while (sent < answer.size()) {
      const ssize_t n = ::send(fd, answer.data() + sent, answer.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
  }
}

int closed_port() {
  int port = 0;
  ::close(bind_loopback(&port));
  return port;
}

}  // namespace infergate::testing
