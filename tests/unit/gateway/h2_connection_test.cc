// The part of a connection both legs share, with a real nghttp2 session on a loopback
// socket: until the connection starts it writes nothing, so its output fills up and the
// session's DATA frames are put off exactly as a slow peer would make them.
#include "gateway/h2/h2_connection.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/write.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gateway/worker.h"

namespace {
std::atomic<int> epoll_ctl_calls{0};
// The socket whose reads are counted (-1: none), and the read/readv calls made on it.
std::atomic<int> counted_fd{-1};
std::atomic<int> counted_reads{0};
}  // namespace

// Every epoll_ctl of this test program (asio's reactor is compiled into it) is counted on
// its way to libc's.
extern "C" int epoll_ctl(int epfd, int op, int fd, epoll_event* event) noexcept {
  using Real = int (*)(int, int, int, epoll_event*);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "epoll_ctl"));
  epoll_ctl_calls.fetch_add(1, std::memory_order_relaxed);
  return real(epfd, op, fd, event);
}

// Every read and readv of this test program is passed on to libc's; those on counted_fd
// are counted.
extern "C" ssize_t read(int fd, void* buf, size_t count) {
  using Real = ssize_t (*)(int, void*, size_t);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "read"));
  if (fd == counted_fd.load(std::memory_order_relaxed)) counted_reads.fetch_add(1);
  return real(fd, buf, count);
}
extern "C" ssize_t readv(int fd, const iovec* iov, int count) {
  using Real = ssize_t (*)(int, const iovec*, int);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "readv"));
  if (fd == counted_fd.load(std::memory_order_relaxed)) counted_reads.fetch_add(1);
  return real(fd, iov, count);
}

namespace infergate::gateway {
namespace {

// A client session on an H2Connection whose peer reads nothing until the test says so:
// its body bytes come from one ByteQueue per stream and go to the connection's output by
// reference.
class HeldConnection final : public H2Connection {
 public:
  HeldConnection(Worker& worker, boost::asio::ip::tcp::socket socket)
      : H2Connection(worker, std::move(socket)) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session* session = nullptr;
    nghttp2_session_client_new(&session, cb, this);
    nghttp2_session_callbacks_del(cb);
    set_session(session);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
    // The peer's SETTINGS and a connection WINDOW_UPDATE: windows of 2^31-1, so only
    // the output's limit holds frames back.
    const std::uint8_t peer[] = {
        0,    0,    6,    4,    0,    0,    0, 0, 0,  // SETTINGS, 6 bytes, stream 0
        0,    4,    0x7f, 0xff, 0xff, 0xff,           // INITIAL_WINDOW_SIZE 2^31-1
        0,    0,    4,    8,    0,    0,    0, 0, 0,  // WINDOW_UPDATE, stream 0
        0x7f, 0xff, 0x00, 0x00};                      // + 2^31-1 - 65535
    EXPECT_EQ(nghttp2_session_mem_recv(session, peer, sizeof peer),
              static_cast<ssize_t>(sizeof peer));
  }

  // Opens a stream whose body (`bytes` long) waits in its own queue.
  std::int32_t open(size_t bytes) {
    auto body = std::make_unique<ByteQueue>(worker().blocks());
    body->append(std::vector<std::uint8_t>(bytes, 0x5a));
    const nghttp2_nv nv[] = {header(":method", "POST"), header(":scheme", "http"),
                             header(":path", "/x"), header(":authority", "t")};
    nghttp2_data_provider provider{};
    provider.source.ptr = body.get();
    provider.read_callback = read_body;
    const std::int32_t id = nghttp2_submit_request(session(), nullptr, nv, 4, &provider, this);
    bodies_[id] = std::move(body);
    return id;
  }
  ByteQueue& body(std::int32_t id) { return *bodies_.at(id); }
  using H2Connection::start;

  // What the connection's flush does before it writes: asks the session for frames.
  void pump() {
    for (int i = 0; i < 64; ++i) {
      const std::uint8_t* data = nullptr;
      if (nghttp2_session_mem_send(session(), &data) <= 0) return;
    }
  }

  std::vector<int> data_results;                 // what append_data_frame answered, in order
  std::map<std::int32_t, std::uint32_t> closed;  // stream id -> error code

 private:
  static nghttp2_nv header(const char* name, const char* value) {
    return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name)),
            reinterpret_cast<std::uint8_t*>(const_cast<char*>(value)), std::strlen(name),
            std::strlen(value), NGHTTP2_NV_FLAG_NONE};
  }
  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t*, size_t length,
                           std::uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* body = static_cast<ByteQueue*>(source->ptr);
    const size_t n = std::min(length, body->size());
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == body->size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  static int send_data(nghttp2_session* session, nghttp2_frame* frame, const std::uint8_t* framehd,
                       size_t length, nghttp2_data_source* source, void* ud) {
    (void)session;
    (void)frame;
    auto* self = static_cast<HeldConnection*>(ud);
    const int rv = self->append_data_frame(framehd, length, *static_cast<ByteQueue*>(source->ptr));
    self->data_results.push_back(rv);
    return rv;
  }
  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code,
                             void* ud) {
    static_cast<HeldConnection*>(ud)->closed[id] = error_code;
    return 0;
  }
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    auto* self = static_cast<HeldConnection*>(ud);
    if (frame->hd.type == NGHTTP2_PING && self->on_ping) self->on_ping();
    return 0;
  }
  void on_teardown(std::string_view reason) override {
    if (on_close) on_close(std::string(reason));
  }
  bool batch_flushes() const override { return batch; }

 public:
  bool batch = false;                         // what batch_flushes() answers
  std::function<void()> on_ping;              // run when a PING arrives (inside the read)
  std::function<void(std::string)> on_close;  // run once, when the connection closes

 private:
  std::map<std::int32_t, std::unique_ptr<ByteQueue>> bodies_;
};

class H2ConnectionTest : public ::testing::Test {
 protected:
  H2ConnectionTest() {
    WorkerShared shared;
    worker_ = std::make_unique<Worker>(0, options_, routing_, std::move(shared));
  }
  // A HeldConnection on one end of a loopback pair, on this worker; `peer` gets the other
  // end, non-blocking. The connection deletes itself once closed.
  // `receive_buffer`, `send_buffer` > 0: the connection's socket's SO_RCVBUF and SO_SNDBUF,
  // set before it connects (past the kernel's cap where the test may: see set_buffer);
  // what the kernel made of the receive buffer is in receive_buffer_.
  HeldConnection* connect(boost::asio::ip::tcp::socket& peer, int receive_buffer = 0,
                          int send_buffer = 0) {
    boost::asio::ip::tcp::acceptor acceptor(worker_->io(),
                                            {boost::asio::ip::make_address("127.0.0.1"), 0});
    boost::asio::ip::tcp::socket ours(worker_->io());
    ours.open(boost::asio::ip::tcp::v4());
    if (receive_buffer > 0)
      receive_buffer_ = set_buffer(ours, SO_RCVBUFFORCE, SO_RCVBUF, receive_buffer);
    if (send_buffer > 0) set_buffer(ours, SO_SNDBUFFORCE, SO_SNDBUF, send_buffer);
    ours.connect(acceptor.local_endpoint());
    peer = acceptor.accept();
    peer.non_blocking(true);
    fd_ = ours.native_handle();
    return new HeldConnection(*worker_, std::move(ours));
  }

  // Sets a socket buffer to `bytes`: past net.core.[rw]mem_max where the process may
  // (SO_*BUFFORCE, with CAP_NET_ADMIN), else as far as that cap allows. Returns what the kernel
  // reports (twice the bytes it granted: its own overhead is counted in).
  static int set_buffer(boost::asio::ip::tcp::socket& socket, int force_option, int option,
                        int bytes) {
    const int fd = socket.native_handle();
    if (setsockopt(fd, SOL_SOCKET, force_option, &bytes, sizeof bytes) != 0) {
      EXPECT_EQ(setsockopt(fd, SOL_SOCKET, option, &bytes, sizeof bytes), 0)
          << std::strerror(errno);
    }
    int granted = 0;
    socklen_t length = sizeof granted;
    EXPECT_EQ(getsockopt(fd, SOL_SOCKET, option, &granted, &length), 0) << std::strerror(errno);
    return granted;
  }

  DataPlaneOptions options_;
  RoutingOptions routing_;
  std::unique_ptr<Worker> worker_;
  int receive_buffer_ = 0;  // the last connect()'s SO_RCVBUF, as the kernel reports it
  int fd_ = -1;             // the last connect()'s socket on the connection's side
};

// nghttp2 asks again, with the same length, for a DATA frame it put off with WOULDBLOCK.
// If the stream's bytes were dropped in between (a client reset, a discarded request),
// the frame cannot be built: that stream is reset, nothing reads past its queue, and the
// connection's other streams go on.
TEST_F(H2ConnectionTest, AFrameDeferredWhoseBytesWereDroppedResetsOnlyItsStream) {
  boost::asio::ip::tcp::socket peer(worker_->io());
  HeldConnection* conn = connect(peer);
  // One stream fills the output to its limit (not written yet); the next one's frame is
  // put off.
  const std::int32_t filler = conn->open(1 << 20);
  conn->pump();
  ASSERT_EQ(conn->body(filler).size(), 0u);
  ASSERT_EQ(conn->data_results.back(), 0);
  const std::int32_t victim = conn->open(256 * 1024);
  conn->pump();
  EXPECT_EQ(conn->data_results.back(), NGHTTP2_ERR_WOULDBLOCK);
  ASSERT_EQ(conn->body(victim).size(), 256u * 1024);

  // The victim's bytes go away while its frame waits; the output drains to the peer and
  // nghttp2 asks for that frame again.
  conn->body(victim).clear();
  conn->data_results.clear();
  conn->start();
  std::vector<std::uint8_t> sink(1 << 16);
  for (int round = 0; round < 10000 && conn->closed.count(victim) == 0; ++round) {
    boost::system::error_code ec;
    peer.read_some(boost::asio::buffer(sink), ec);
    worker_->io().poll();
  }
  ASSERT_FALSE(conn->data_results.empty());
  EXPECT_EQ(conn->data_results.front(), NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
  EXPECT_EQ(conn->closed.count(filler), 0u) << "the other stream was hurt";
  ASSERT_EQ(conn->closed.count(victim), 1u) << "the stream whose bytes went was not reset";
  EXPECT_EQ(conn->closed.at(victim), NGHTTP2_INTERNAL_ERROR);
  EXPECT_EQ(conn->body(victim).size(), 0u);
  conn->close("test over");
  worker_->io().poll();  // the connection is deleted from a posted handler
}

// Reads what the connection has written so far (non-blocking): its byte count.
size_t drain(boost::asio::ip::tcp::socket& peer) {
  std::vector<std::uint8_t> sink(1 << 16);
  size_t total = 0;
  for (;;) {
    boost::system::error_code ec;
    const size_t n = peer.read_some(boost::asio::buffer(sink), ec);
    if (ec || n == 0) return total;
    total += n;
  }
}

// With batching on (many clients on the worker), what a read causes is written by the
// worker's flush after the other handlers of that turn, not from the read's own handler;
// the block the read went into goes back to the pool at once when nothing points into it,
// as it does after an immediate flush.
TEST_F(H2ConnectionTest, ABatchedReadFlushesAfterTheTurnAndReleasesItsBlock) {
  boost::asio::ip::tcp::socket peer(worker_->io());
  HeldConnection* conn = connect(peer);
  conn->start();
  ASSERT_GT(drain(peer), 0u);  // the preface and SETTINGS
  const std::uint8_t ping[] = {0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  constexpr size_t kPingAck = sizeof ping;
  // Each round: the peer pings, the read's handler runs alone, then the rest of the turn.
  // The peer pings and the read's handler runs alone; true once it has run.
  auto handle_read = [&] {
    boost::asio::write(peer, boost::asio::buffer(ping));
    worker_->io().restart();
    // run_one waits until the read's handler has run (the peer's bytes are in flight).
    return worker_->io().run_one_for(std::chrono::seconds(10)) == 1;
  };

  ASSERT_TRUE(handle_read());
  EXPECT_EQ(drain(peer), kPingAck) << "without batching the read's handler writes the ack";
  EXPECT_EQ(worker_->blocks().blocks_in_use(), 0u);

  conn->batch = true;
  ASSERT_TRUE(handle_read());
  EXPECT_EQ(drain(peer), 0u) << "the ack waits for the end of the turn";
  EXPECT_EQ(worker_->blocks().blocks_in_use(), 0u) << "nothing points into the read's block";
  worker_->io().poll();  // the worker's posted flush
  EXPECT_EQ(drain(peer), kPingAck);
  EXPECT_EQ(worker_->blocks().blocks_in_use(), 0u);

  conn->close("test over");
  worker_->io().poll();  // the connection is deleted from a posted handler
}

// What a read causes on another connection is flushed at the end of that read, and that is
// all: no handler is left posted for a later turn (which would cost the worker an extra
// pass of its event loop, an epoll_wait, on every read). A batched read still posts one.
TEST_F(H2ConnectionTest, AReadFlushesWhatItMarkedAndLeavesNoHandlerBehind) {
  boost::asio::ip::tcp::socket peer_a(worker_->io());
  boost::asio::ip::tcp::socket peer_b(worker_->io());
  HeldConnection* a = connect(peer_a);
  HeldConnection* b = connect(peer_b);
  a->start();
  b->start();
  worker_->io().poll();
  ASSERT_GT(drain(peer_a), 0u);
  ASSERT_GT(drain(peer_b), 0u);
  // A PING read on `a` makes `b` send one (as a request read on a client connection makes
  // its backend connection send it on).
  a->on_ping = [b] {
    const std::uint8_t opaque[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    nghttp2_submit_ping(b->session(), NGHTTP2_FLAG_NONE, opaque);
    b->schedule_flush();
  };
  const std::uint8_t ping[] = {0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  constexpr size_t kPing = sizeof ping;
  auto handle_read = [&] {
    boost::asio::write(peer_a, boost::asio::buffer(ping));
    worker_->io().restart();
    return worker_->io().run_one_for(std::chrono::seconds(10)) == 1;
  };

  ASSERT_TRUE(handle_read());
  EXPECT_EQ(drain(peer_b), kPing) << "the read's own handler flushes what it marked";
  EXPECT_EQ(drain(peer_a), kPing) << "and its own ack";
  EXPECT_EQ(worker_->io().poll(), 0u) << "no handler left for a later turn";
  EXPECT_EQ(drain(peer_b), 0u);

  a->batch = true;
  ASSERT_TRUE(handle_read());
  EXPECT_EQ(drain(peer_b), 0u) << "batched: the flush waits for the end of the turn";
  // One handler: the worker's posted flush (poll() would also count the peers' sockets
  // turning readable, which the drains above cleared in the unbatched case).
  EXPECT_EQ(worker_->io().poll_one(), 1u);
  EXPECT_EQ(drain(peer_b), kPing);
  EXPECT_EQ(drain(peer_a), kPing);

  a->close("test over");
  b->close("test over");
  worker_->io().poll();
}

// asio's async_wait re-registers the socket (epoll_ctl) on every wait. A read that has
// found the socket empty waits without that: the next bytes are a new edge (SocketWait).
TEST_F(H2ConnectionTest, ReadWaitsAfterASocketWasReadDryCostNoEpollCtl) {
  if (!kSocketWaitAvailable) GTEST_SKIP() << "this asio has no SocketWait: async_wait is used";
  boost::asio::ip::tcp::socket peer(worker_->io());
  HeldConnection* conn = connect(peer);
  conn->start();
  ASSERT_GT(drain(peer), 0u);  // the preface and SETTINGS
  const std::uint8_t ping[] = {0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  const int before = epoll_ctl_calls.load();
  for (int i = 0; i < 20; ++i) {
    boost::asio::write(peer, boost::asio::buffer(ping));
    worker_->io().restart();
    ASSERT_EQ(worker_->io().run_one_for(std::chrono::seconds(10)), 1u) << "read " << i;
    EXPECT_EQ(drain(peer), sizeof ping) << "the ack of ping " << i;
  }
  EXPECT_EQ(epoll_ctl_calls.load() - before, 0) << "20 reads, each followed by a wait";
  conn->close("test over");
  worker_->io().poll();
}

// A read that returns fewer bytes than asked for has not emptied the socket: an end of
// stream (FIN) or a reset that came in with the data is still queued behind it, and
// raises no new edge. The connection reads on until the socket says EAGAIN, so it sees
// the peer go and closes at once instead of waiting for a timeout.
TEST_F(H2ConnectionTest, APeerThatClosesRightAfterItsLastBytesIsSeenToGo) {
  for (const bool reset : {false, true}) {
    SCOPED_TRACE(reset ? "data, then RST" : "data, then FIN");
    boost::asio::ip::tcp::socket peer(worker_->io());
    HeldConnection* conn = connect(peer);
    std::string reason;
    conn->on_close = [&reason](std::string why) { reason = std::move(why); };
    conn->start();  // writes the preface and SETTINGS, and waits for the peer's bytes
    worker_->io().restart();
    worker_->io().poll();
    EXPECT_GT(drain(peer), 0u);
    // A frame the connection answers nothing to (an unknown type: an answer would meet
    // the closed socket, and the peer's RST would be a new edge) and the end of the
    // connection, both in the socket before the connection reads again.
    const std::uint8_t unknown[] = {0, 0, 4, 0xf0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    boost::asio::write(peer, boost::asio::buffer(unknown));
    if (reset) peer.set_option(boost::asio::socket_base::linger(true, 0));
    peer.close();
    // Seen at once when right; the deadline only bounds a failure.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (reason.empty() && std::chrono::steady_clock::now() < deadline) {
      worker_->io().restart();
      worker_->io().run_one_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(reason.find(reset ? "Connection reset" : "peer closed"), std::string::npos)
        << "the connection did not see its peer go in 10 s (closed for: '" << reason << "')";
    if (reason.empty()) conn->close("test over");
    worker_->io().restart();
    worker_->io().poll();
  }
}

// A write the socket refused waits for room without re-registering it, except the first
// time, which adds EPOLLOUT to its registration; every byte still arrives.
TEST_F(H2ConnectionTest, WriteWaitsCostOneEpollCtlInAll) {
  if (!kSocketWaitAvailable) GTEST_SKIP() << "this asio has no SocketWait: async_wait is used";
  boost::asio::ip::tcp::socket peer(worker_->io());
  // Small buffers both ways, so that the connection's writes block many times.
  HeldConnection* conn = connect(peer, 0, 32 * 1024);
  peer.set_option(boost::asio::socket_base::receive_buffer_size(32 * 1024));
  constexpr size_t kBody = 4 << 20;
  const std::int32_t id = conn->open(kBody);
  const int before = epoll_ctl_calls.load();
  conn->start();
  int blocked = 0;  // times the connection's writes were seen refused anew
  std::chrono::steady_clock::time_point last_blocked{};
  size_t received = 0;
  std::vector<std::uint8_t> sink(16 * 1024);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // Until every DATA byte is out: the body queue is empty and no write waits.
  while ((received < kBody || conn->body(id).size() > 0 || conn->write_blocked()) &&
         std::chrono::steady_clock::now() < deadline) {
    if (conn->write_blocked() && conn->write_blocked_since() != last_blocked) {
      ++blocked;
      last_blocked = conn->write_blocked_since();
    }
    boost::system::error_code ec;
    received += peer.read_some(boost::asio::buffer(sink), ec);
    worker_->io().poll();
  }
  received += drain(peer);
  // At least the body and its DATA frames' headers (frames of 16 KiB at most).
  EXPECT_GE(received, kBody + 9 * (kBody / (16 * 1024))) << "the body arrived";
  EXPECT_EQ(conn->body(id).size(), 0u);
  EXPECT_GE(blocked, 10) << "the writes blocked many times";
  EXPECT_LE(epoll_ctl_calls.load() - before, 2)
      << "the start's read wait, and the first write wait adding EPOLLOUT";
  conn->close("test over");
  worker_->io().poll();
}

// A PING frame (8 bytes of opaque data on stream 0).
constexpr std::uint8_t kPing[] = {0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
constexpr size_t kPingBytes = sizeof kPing;

// 1 MiB of frames of an unknown type (nghttp2 ignores them), then a PING: more than one
// read event takes (512 KiB each).
std::vector<std::uint8_t> ignored_mebibyte_then_ping() {
  std::vector<std::uint8_t> blob;
  for (int i = 0; i < 64; ++i) {
    const std::uint8_t header[] = {0x00, 0x40, 0x00, 0xf0, 0, 0, 0, 0, 0};  // 16 KiB, type 0xf0
    blob.insert(blob.end(), header, header + sizeof header);
    blob.resize(blob.size() + 16 * 1024, 0x11);
  }
  blob.insert(blob.end(), kPing, kPing + kPingBytes);
  return blob;
}

// Writes all of `blob` to `peer` (non-blocking) before `deadline`; false if it could not.
bool send_all(boost::asio::ip::tcp::socket& peer, const std::vector<std::uint8_t>& blob,
              std::chrono::steady_clock::time_point deadline) {
  size_t sent = 0;
  while (sent < blob.size() && std::chrono::steady_clock::now() < deadline) {
    boost::system::error_code ec;
    sent += peer.write_some(boost::asio::buffer(blob.data() + sent, blob.size() - sent), ec);
    if (ec && ec != boost::asio::error::would_block) return false;
    if (ec) std::this_thread::yield();  // the kernel is still moving bytes: poll again
  }
  return sent == blob.size();
}

// Waits until socket `fd` has `bytes` to read (or `deadline`): true if it has.
bool wait_until_queued(int fd, size_t bytes, std::chrono::steady_clock::time_point deadline) {
  int queued = 0;
  while (ioctl(fd, FIONREAD, &queued) == 0 && static_cast<size_t>(queued) < bytes &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  return static_cast<size_t>(queued) == bytes;
}

// Runs the worker until the PING's ack comes back (or `deadline`): the bytes the ack.
size_t run_until_ping_acked(Worker& worker, boost::asio::ip::tcp::socket& peer,
                            std::chrono::steady_clock::time_point deadline) {
  size_t acked = 0;
  while (acked < kPingBytes && std::chrono::steady_clock::now() < deadline) {
    worker.io().restart();
    worker.io().run_one_for(std::chrono::milliseconds(50));
    acked += drain(peer);
  }
  return acked;
}

// Tests that begin with 1 MiB and a PING written to a started connection, all of it in
// the connection's socket before it reads (skipped where the kernel will not grant that
// room: net.core.rmem_max, and no CAP_NET_ADMIN for SO_RCVBUFFORCE).
class H2ConnectionFullSocketTest : public H2ConnectionTest {
 protected:
  void SetUp() override {
    conn_ = connect(peer_, 4 << 20);
    if (static_cast<size_t>(receive_buffer_) < 2 * blob_.size()) {
      GTEST_SKIP() << "the kernel granted a receive buffer of " << receive_buffer_ / 2
                   << " bytes: it cannot hold " << blob_.size() << " bytes";
    }
    conn_->start();
    ASSERT_GT(drain(peer_), 0u) << "the preface and SETTINGS";
    ASSERT_TRUE(send_all(peer_, blob_, deadline_));
  }
  void TearDown() override {
    if (conn_ == nullptr) return;  // connect() threw
    conn_->close("test over");
    worker_->io().poll();
  }

  const std::vector<std::uint8_t> blob_ = ignored_mebibyte_then_ping();
  const std::chrono::steady_clock::time_point deadline_ =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  boost::asio::ip::tcp::socket peer_{worker_->io()};
  HeldConnection* conn_ = nullptr;
};

// A read event stops after its round limit even if the socket has more; what is left
// raises no new edge, so the connection must not wait for one: everything is still read.
TEST_F(H2ConnectionFullSocketTest, BytesLeftAfterAReadsRoundLimitAreReadWithoutNewOnes) {
  EXPECT_EQ(run_until_ping_acked(*worker_, peer_, deadline_), kPingBytes)
      << "the PING after the first event's 512 KiB was answered";
}

// A read that fills all the space it was given says the socket holds more: the next
// reads take several blocks each. 1 MiB waiting in the socket is read in 8 calls (two
// events of read, 4-block readv, 3-block readv; then the rest and the EAGAIN), not in
// the 18 that reads of one block at a time need.
TEST_F(H2ConnectionFullSocketTest, ASocketHoldingMoreThanABlockIsReadSeveralBlocksAtATime) {
  // All of it in the connection's socket before it reads, so no read comes up short.
  ASSERT_TRUE(wait_until_queued(fd_, blob_.size(), deadline_));
  counted_reads = 0;
  counted_fd = fd_;
  const size_t acked = run_until_ping_acked(*worker_, peer_, deadline_);
  counted_fd = -1;
  EXPECT_EQ(acked, kPingBytes);
  EXPECT_EQ(counted_reads.load(), 8) << "read and readv calls for " << blob_.size() << " bytes";
}

// The blocks a wide read does not reach go back to the pool before its bytes are fed:
// they count against the buffer budget that streams consult while the bytes are read.
// One block of frames and a PING wait in the socket: the first read fills a block, so the
// second is a readv of four blocks that reaches only the first.
TEST_F(H2ConnectionTest, BlocksAWideReadDidNotReachAreReleasedBeforeItsBytesAreRead) {
  std::vector<std::uint8_t> blob;
  constexpr size_t kPayload = Block::kSize / 4 - 9;
  for (int i = 0; i < 4; ++i) {  // exactly one block: four frames of an unknown type
    const auto high = static_cast<std::uint8_t>(kPayload >> 8);
    const auto low = static_cast<std::uint8_t>(kPayload & 0xff);
    const std::uint8_t header[] = {0x00, high, low, 0xf0, 0, 0, 0, 0, 0};
    blob.insert(blob.end(), header, header + sizeof header);
    blob.resize(blob.size() + kPayload, 0x11);
  }
  ASSERT_EQ(blob.size(), Block::kSize);
  blob.insert(blob.end(), kPing, kPing + kPingBytes);
  boost::asio::ip::tcp::socket peer(worker_->io());
  HeldConnection* conn = connect(peer, 1 << 20);
  ASSERT_GE(static_cast<size_t>(receive_buffer_), 2 * blob.size());
  size_t in_use_at_ping = 0;
  conn->on_ping = [&] { in_use_at_ping = worker_->blocks().blocks_in_use(); };
  conn->start();
  ASSERT_GT(drain(peer), 0u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  ASSERT_TRUE(send_all(peer, blob, deadline));
  ASSERT_TRUE(wait_until_queued(fd_, blob.size(), deadline));
  const size_t before = worker_->blocks().blocks_in_use();
  EXPECT_EQ(run_until_ping_acked(*worker_, peer, deadline), kPingBytes);
  EXPECT_EQ(in_use_at_ping, before + 1) << "only the block the PING was read into";
  conn->close("test over");
  worker_->io().poll();
}

}  // namespace
}  // namespace infergate::gateway
