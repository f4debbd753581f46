// A tiny HTTP/1.x server for tests, on 127.0.0.1 with an OS-chosen port: it reads each
// request's headers and writes back a fixed answer, byte for byte (a good metrics page,
// garbage, a 404, half an answer), or holds the connection without answering. One
// thread, one connection at a time.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace infergate::testing {

class FakeHttpServer {
 public:
  // Answers every request with `raw` (status line, headers and body, as given).
  explicit FakeHttpServer(std::string raw);
  ~FakeHttpServer();

  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  int port() const { return port_; }
  // Requests whose headers were read so far.
  int requests() const { return requests_.load(); }
  // What later requests get.
  void set_answer(std::string raw);
  // When true, requests are read but never answered (the connection stays open).
  void set_silent(bool silent) { silent_ = silent; }
  // The last request's start line and headers.
  std::string last_request();

  // A 200 answer with `body`, its Content-Length and a text/plain content type.
  static std::string ok(const std::string& body);

 private:
  void serve();

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string answer_;
  std::string last_request_;
  std::vector<int> held_;  // silent connections, closed at the end
  std::thread thread_;
};

// A loopback port on which nothing listens (bound, then closed).
int closed_port();

}  // namespace infergate::testing
