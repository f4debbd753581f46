#include "tests/support/relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace infergate::testing {

TcpRelay::TcpRelay(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("relay: cannot listen on 127.0.0.1:0");
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TcpRelay::~TcpRelay() {
  stopping_ = true;
  acceptor_.join();
  {
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
  for (int fd : fds_) ::close(fd);
  ::close(listen_fd_);
}

void TcpRelay::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;  // wakes to check stopping_
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    if (silent_) {
      std::lock_guard lock(mu_);
      fds_.push_back(client);  // closed at the end
      continue;
    }
    const int target = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(target_port_));
    if (target < 0 || ::connect(target, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(client);
      if (target >= 0) ::close(target);
      continue;
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(target, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(mu_);
    fds_.push_back(client);
    fds_.push_back(target);
    threads_.emplace_back([this, client, target] { pump(client, target, true); });
    threads_.emplace_back([this, client, target] { pump(target, client, false); });
  }
}

void TcpRelay::pump(int from, int to, bool toward_target) {
  std::vector<char> buffer(256 * 1024);
  while (true) {
    const ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    note_bytes(static_cast<size_t>(n), toward_target);
    for (ssize_t sent = 0; sent < n;) {
      const ssize_t w =
          ::send(to, buffer.data() + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        ::shutdown(from, SHUT_RDWR);
        return;
      }
      sent += w;
    }
  }
  ::shutdown(to, SHUT_WR);
}

void TcpRelay::note_bytes(size_t n, bool toward_target) {
  if (!toward_target) {
    from_target_ += n;
    return;
  }
  to_target_ += n;
  std::lock_guard lock(mu_);
  const Clock::time_point now = Clock::now();
  if (timed_bytes_ == 0) {
    first_ = now;  // the first read's bytes arrived before `now`: not in the rate
  } else {
    timed_bytes_ += n;
    last_ = now;
    return;
  }
  timed_bytes_ = 1;  // marks "started"; the real count starts with the next read
  last_ = now;
}

void TcpRelay::reset_counts() {
  std::lock_guard lock(mu_);
  to_target_ = 0;
  from_target_ = 0;
  timed_bytes_ = 0;
}

double TcpRelay::rate_to_target() const {
  std::lock_guard lock(mu_);
  const double seconds = std::chrono::duration<double>(last_ - first_).count();
  if (timed_bytes_ <= 1 || seconds <= 0) return 0;
  return static_cast<double>(timed_bytes_ - 1) / seconds;
}

}  // namespace infergate::testing
