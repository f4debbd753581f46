// A Redis client for the control plane: one connection (TCP, or TLS for rediss://), AUTH
// and SELECT on connect, commands pipelined in order, every answer within a timeout.
// Driven on the io_context it is given (the control io_context): nothing blocks, and
// nothing of it runs on the data path. RESP is read by hiredis's reader (libhiredis) with
// object functions of our own, so that what Redis sends is bounded as it is parsed: at
// most max_elements values and max_reply_bytes of text in one answer, whatever the
// headers claim.
//
// A connection that fails (refused, reset, an answer late or too large, a protocol
// error) fails every command in flight with the reason; the next command connects again,
// but not sooner than a backoff that doubles from `retry_min` to `retry_max`.
// Not thread-safe: every call on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/host_port.h"

namespace infergate::gateway {

// One RESP value.
struct RedisValue {
  enum class Type : std::uint8_t { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  long long integer = 0;
  std::string text;  // kString, kStatus, kError
  std::vector<RedisValue> elements;

  bool is_error() const { return type == Type::kError; }
};

class RedisClient {
 public:
  struct Options {
    config::RedisUrl url;
    std::string ca_file;  // rediss: CAs for Redis's certificate (empty: the system's)
    std::chrono::nanoseconds timeout = std::chrono::milliseconds(500);  // connect, each answer
    std::chrono::nanoseconds retry_min = std::chrono::milliseconds(100);
    std::chrono::nanoseconds retry_max = std::chrono::seconds(2);
    size_t max_reply_bytes = 1 << 20;
    size_t max_elements = 1 << 16;
  };
  // The answer, or null and why not (an error answer from Redis is an answer).
  using Done = std::function<void(const RedisValue* reply, const std::string& error)>;

  RedisClient(boost::asio::io_context& io, Options options);
  ~RedisClient();  // fails nothing: callbacks of commands in flight are dropped
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends `args` (connecting first if needed); `done` runs once, on the io_context's
  // thread, never inside this call.
  void command(std::vector<std::string> args, Done done);
  // A connection is up (its AUTH, if any, may not be answered yet).
  bool connected() const;
  // What the last failure was ("" if none since the last connection).
  const std::string& last_error() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// RESP bounds, for the reader's object functions (exposed for unit tests): parses
// `bytes` as one or more replies; returns them, or an error.
struct RedisParse {
  std::vector<RedisValue> replies;
  std::string error;
  size_t pending_bytes = 0;  // buffered for a reply not complete yet
};
RedisParse parse_redis_replies(const std::string& bytes, size_t max_reply_bytes,
                               size_t max_elements);

}  // namespace infergate::gateway
