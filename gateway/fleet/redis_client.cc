#include "gateway/fleet/redis_client.h"

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <optional>

#include "health/http_fetch.h"

namespace infergate::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// What one answer may take, counted as hiredis builds it.
struct Budget {
  size_t max_bytes = 0;
  size_t max_elements = 0;
  size_t bytes = 0;
  size_t elements = 0;
};

Budget& budget_of(const redisReadTask* task) { return *static_cast<Budget*>(task->privdata); }

// A value goes into its parent array's slot (sized when the array was made), or is a
// new answer of its own. hiredis frees only answers (freeObject), never slots.
void* place(const redisReadTask* task, RedisValue&& value) {
  if (task->parent != nullptr) {
    auto* parent = static_cast<RedisValue*>(task->parent->obj);
    RedisValue& slot = parent->elements[static_cast<size_t>(task->idx)];
    slot = std::move(value);
    return &slot;
  }
  return new RedisValue(std::move(value));
}

void* create_string(const redisReadTask* task, char* text, size_t len) {
  Budget& b = budget_of(task);
  b.bytes += len;
  if (b.bytes > b.max_bytes) return nullptr;  // the reader fails the answer
  RedisValue v;
  v.type = task->type == REDIS_REPLY_ERROR    ? RedisValue::Type::kError
           : task->type == REDIS_REPLY_STATUS ? RedisValue::Type::kStatus
                                              : RedisValue::Type::kString;
  v.text.assign(text, len);
  return place(task, std::move(v));
}

void* create_array(const redisReadTask* task, int elements) {
  Budget& b = budget_of(task);
  b.elements += static_cast<size_t>(std::max(elements, 0));
  if (elements < 0 || b.elements > b.max_elements) return nullptr;
  RedisValue v;
  v.type = RedisValue::Type::kArray;
  v.elements.resize(static_cast<size_t>(elements));
  return place(task, std::move(v));
}

void* create_integer(const redisReadTask* task, long long value) {
  RedisValue v;
  v.type = RedisValue::Type::kInteger;
  v.integer = value;
  return place(task, std::move(v));
}

void* create_nil(const redisReadTask* task) { return place(task, RedisValue{}); }

void free_object(void* answer) { delete static_cast<RedisValue*>(answer); }

redisReplyObjectFunctions kObjectFunctions = {create_string, create_array, create_integer,
                                              create_nil, free_object};

// hiredis's RESP reader with our object functions and bounds.
class ReplyReader {
 public:
  ReplyReader(size_t max_bytes, size_t max_elements)
      : reader_(redisReaderCreateWithFunctions(&kObjectFunctions)) {
    budget_.max_bytes = max_bytes;
    budget_.max_elements = max_elements;
    if (reader_ != nullptr) reader_->privdata = &budget_;
  }
  ~ReplyReader() {
    if (reader_ != nullptr) redisReaderFree(reader_);
  }
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  bool feed(const char* data, size_t n) {
    if (reader_ == nullptr) return fail("cannot make a RESP reader");
    if (redisReaderFeed(reader_, data, n) != REDIS_OK) return fail(reader_->errstr);
    // A bulk string is buffered whole before it is parsed: bounded here.
    if (pending() > budget_.max_bytes) {
      return fail("an answer over " + std::to_string(budget_.max_bytes) + " bytes");
    }
    return true;
  }

  // 1: `out` is the next answer; 0: none complete yet; -1: error().
  int next(RedisValue& out) {
    if (!error_.empty()) return -1;
    void* answer = nullptr;
    if (redisReaderGetReply(reader_, &answer) != REDIS_OK) {
      fail(budget_.bytes > budget_.max_bytes
               ? "an answer over " + std::to_string(budget_.max_bytes) + " bytes"
           : budget_.elements > budget_.max_elements
               ? "an answer of over " + std::to_string(budget_.max_elements) + " values"
               : std::string(reader_->errstr));
      return -1;
    }
    if (answer == nullptr) return 0;
    std::unique_ptr<RedisValue> value(static_cast<RedisValue*>(answer));
    out = std::move(*value);
    budget_.bytes = budget_.elements = 0;
    return 1;
  }

  size_t pending() const { return reader_ == nullptr ? 0 : reader_->len - reader_->pos; }
  const std::string& error() const { return error_; }

 private:
  bool fail(std::string why) {
    if (error_.empty()) error_ = "RESP: " + why;
    return false;
  }

  redisReader* reader_;
  Budget budget_;
  std::string error_;
};

std::string format_command(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* formatted = nullptr;
  const int n =
      redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n < 0 || formatted == nullptr) return {};
  std::string out(formatted, static_cast<size_t>(n));
  redisFreeCommand(formatted);
  return out;
}

std::string format_ms(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

}  // namespace

RedisParse parse_redis_replies(const std::string& bytes, size_t max_reply_bytes,
                               size_t max_elements) {
  RedisParse out;
  ReplyReader reader(max_reply_bytes, max_elements);
  if (!reader.feed(bytes.data(), bytes.size())) {
    out.error = reader.error();
    return out;
  }
  RedisValue v;
  int got = 0;
  while ((got = reader.next(v)) == 1) out.replies.push_back(std::move(v));
  if (got < 0) out.error = reader.error();
  out.pending_bytes = reader.pending();
  return out;
}

struct RedisClient::Impl : std::enable_shared_from_this<Impl> {
  enum class State : std::uint8_t { kIdle, kConnecting, kReady };
  struct Pending {
    Done done;
    Clock::time_point sent;
  };

  Impl(asio::io_context& io_context, Options o)
      : io(io_context),
        options(std::move(o)),
        tls_context(asio::ssl::context::tls_client),
        resolver(io_context),
        timer(io_context),
        backoff(options.retry_min) {
    if (options.url.tls) setup_error = health::configure_client_tls(tls_context, options.ca_file);
  }

  void command(std::vector<std::string> args, Done done) {
    std::string wire = format_command(args);
    if (wire.empty()) return finish(std::move(done), "cannot format the command");
    if (closed) return;
    switch (state) {
      case State::kReady:
        send(std::move(wire), std::move(done));
        return;
      case State::kConnecting:
        waiting.emplace_back(std::move(wire), std::move(done));
        return;
      case State::kIdle:
        if (Clock::now() < retry_at) {
          return finish(std::move(done), "not connected (" + last_error + "); trying again in " +
                                             format_ms(retry_at - Clock::now()));
        }
        waiting.emplace_back(std::move(wire), std::move(done));
        connect();
        return;
    }
  }

  // `done` with an error, after this call returns (unless the client is gone by then).
  void finish(Done done, std::string error) {
    asio::post(io, [self = shared_from_this(), done = std::move(done), error = std::move(error)] {
      if (!self->closed) done(nullptr, error);
    });
  }

  void connect() {
    if (!setup_error.empty()) return fail(setup_error);
    state = State::kConnecting;
    const std::uint64_t gen = ++generation;
    connect_deadline = Clock::now() + options.timeout;
    arm();
    resolver.async_resolve(
        options.url.address.host, std::to_string(options.url.address.port),
        [self = shared_from_this(), gen](const boost::system::error_code& ec,
                                         tcp::resolver::results_type results) {
          if (self->stale(gen)) return;
          if (ec)
            return self->fail("cannot resolve " + self->options.url.address.host + ": " +
                              ec.message());
          self->transport = std::make_shared<Transport>(self->io);
          asio::async_connect(self->transport->socket, results,
                              [self, gen, t = self->transport](const boost::system::error_code& ec2,
                                                               const tcp::endpoint&) {
                                if (self->stale(gen)) return;
                                if (ec2) return self->fail("cannot connect: " + ec2.message());
                                self->on_connected(gen);
                              });
        });
  }

  void on_connected(std::uint64_t gen) {
    boost::system::error_code ignored;
    Transport& t = *transport;
    t.socket.set_option(tcp::no_delay(true), ignored);
    if (!options.url.tls) return on_transport(gen);
    t.tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(t.socket, tls_context);
    const std::string& host = options.url.address.host;
    SSL_set_tlsext_host_name(t.tls->native_handle(), host.c_str());
    t.tls->set_verify_callback(asio::ssl::host_name_verification(host));
    t.tls->async_handshake(
        asio::ssl::stream_base::client,
        [self = shared_from_this(), gen, keep = transport](const boost::system::error_code& ec) {
          if (self->stale(gen)) return;
          if (ec) return self->fail("TLS handshake: " + ec.message());
          self->on_transport(gen);
        });
  }

  void on_transport(std::uint64_t gen) {
    state = State::kReady;
    reader = std::make_unique<ReplyReader>(options.max_reply_bytes, options.max_elements);
    read(gen);
    // AUTH and SELECT go first; a refusal fails the connection.
    const config::RedisUrl& url = options.url;
    auto check = [self = shared_from_this(), gen](std::string what) {
      return [self, gen, what](const RedisValue* reply, const std::string& error) {
        if (self->stale(gen) || reply == nullptr || !reply->is_error()) {
          (void)error;
          return;
        }
        self->fail(what + " refused: " + reply->text);
      };
    };
    if (!url.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!url.username.empty()) auth.push_back(url.username);
      auth.push_back(url.password);
      send(format_command(auth), check("AUTH"));
    }
    if (url.db != 0) send(format_command({"SELECT", std::to_string(url.db)}), check("SELECT"));
    auto queued = std::move(waiting);
    waiting.clear();
    for (auto& [wire, done] : queued) send(std::move(wire), std::move(done));
    if (pending.empty()) arm();
  }

  void send(std::string wire, Done done) {
    pending.push_back({std::move(done), Clock::now()});
    queued_bytes += wire;
    write(generation);
    if (pending.size() == 1) arm();
  }

  void write(std::uint64_t gen) {
    if (!transport) return;  // connecting: on_transport() writes what is queued
    Transport& t = *transport;
    if (!t.writing.empty() || queued_bytes.empty()) return;
    t.writing.swap(queued_bytes);
    // The transport (socket, TLS state, buffers) lives as long as an operation on it does,
    // even past a teardown.
    auto on_written = [self = shared_from_this(), gen, keep = transport](
                          const boost::system::error_code& ec, size_t) {
      if (self->stale(gen)) return;
      if (ec) return self->fail("write: " + ec.message());
      keep->writing.clear();
      self->write(gen);
    };
    if (t.tls) {
      asio::async_write(*t.tls, asio::buffer(t.writing), on_written);
    } else {
      asio::async_write(t.socket, asio::buffer(t.writing), on_written);
    }
  }

  void read(std::uint64_t gen) {
    Transport& t = *transport;
    auto on_read = [self = shared_from_this(), gen, keep = transport](
                       const boost::system::error_code& ec, size_t n) {
      if (self->stale(gen)) return;
      if (ec) {
        return self->fail(ec == asio::error::eof ? "Redis closed the connection"
                                                 : "read: " + ec.message());
      }
      self->on_bytes(gen, n);
    };
    if (t.tls) {
      t.tls->async_read_some(asio::buffer(t.buffer), on_read);
    } else {
      t.socket.async_read_some(asio::buffer(t.buffer), on_read);
    }
  }

  void on_bytes(std::uint64_t gen, size_t n) {
    if (!reader->feed(transport->buffer.data(), n)) return fail(reader->error());
    RedisValue value;
    int got = 0;
    while ((got = reader->next(value)) == 1) {
      if (pending.empty()) return fail("an answer nobody asked for");
      Done done = std::move(pending.front().done);
      pending.pop_front();
      backoff = options.retry_min;  // Redis answers: the next failure starts over
      last_error.clear();
      done(&value, "");
      if (stale(gen)) return;  // the callback failed the connection (AUTH)
    }
    if (got < 0) return fail(reader->error());
    arm();
    read(gen);
  }

  // One timer: the connection's deadline while connecting, else the oldest command's.
  void arm() {
    std::optional<Clock::time_point> at;
    if (state == State::kConnecting) {
      at = connect_deadline;
    } else if (state == State::kReady && !pending.empty()) {
      at = pending.front().sent + options.timeout;
    }
    if (!at) {
      timer.cancel();
      return;
    }
    timer.expires_at(*at);
    timer.async_wait([self = shared_from_this(),
                      gen = generation](const boost::system::error_code& ec) {
      if (ec || self->stale(gen)) return;
      const bool late = self->state == State::kConnecting
                            ? Clock::now() >= self->connect_deadline
                            : !self->pending.empty() && Clock::now() >= self->pending.front().sent +
                                                                            self->options.timeout;
      if (late) {
        self->fail(
            (self->state == State::kConnecting ? "no connection within " : "no answer within ") +
            format_ms(self->options.timeout));
      }
    });
  }

  bool stale(std::uint64_t gen) const { return closed || gen != generation; }

  void fail(const std::string& reason) {
    ++generation;
    teardown();
    state = State::kIdle;
    last_error = reason;
    retry_at = Clock::now() + backoff;
    backoff = std::min(backoff * 2, options.retry_max);
    std::vector<Done> failed;
    for (Pending& p : pending) failed.push_back(std::move(p.done));
    for (auto& [wire, done] : waiting) failed.push_back(std::move(done));
    pending.clear();
    waiting.clear();
    for (Done& done : failed) finish(std::move(done), reason);
  }

  void teardown() {
    boost::system::error_code ignored;
    resolver.cancel();
    timer.cancel();
    // Operations still pending on it complete (aborted) and let it go.
    if (transport) transport->socket.close(ignored);
    transport.reset();
    reader.reset();
    queued_bytes.clear();
  }

  void close() {
    closed = true;
    ++generation;
    teardown();
    pending.clear();
    waiting.clear();
  }

  asio::io_context& io;
  Options options;
  asio::ssl::context tls_context;
  std::string setup_error;
  tcp::resolver resolver;
  asio::steady_timer timer;
  // One connection's socket, TLS state and buffers: shared with every operation pending
  // on it, so that a teardown never frees what an operation still uses.
  struct Transport {
    explicit Transport(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
    std::array<char, 16384> buffer{};
    std::string writing;
  };
  std::shared_ptr<Transport> transport;
  std::unique_ptr<ReplyReader> reader;
  std::string queued_bytes;
  std::deque<Pending> pending;
  std::vector<std::pair<std::string, Done>> waiting;
  State state = State::kIdle;
  std::uint64_t generation = 0;
  Clock::time_point connect_deadline{};
  Clock::time_point retry_at{};
  std::chrono::nanoseconds backoff;
  std::string last_error;
  bool closed = false;
};

RedisClient::RedisClient(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

RedisClient::~RedisClient() { impl_->close(); }

void RedisClient::command(std::vector<std::string> args, Done done) {
  impl_->command(std::move(args), std::move(done));
}

bool RedisClient::connected() const { return impl_->state == Impl::State::kReady; }

const std::string& RedisClient::last_error() const { return impl_->last_error; }

}  // namespace infergate::gateway
