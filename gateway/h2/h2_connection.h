// The part of an HTTP/2 connection both legs share: a non-blocking socket driven by the
// worker's io_context, an nghttp2 session, and the read/flush/write loop between them.
//
// Reads go into pooled blocks and from there into nghttp2, whose DATA payloads the streams
// keep by reference to those blocks (the tensor bytes are never copied in user space on
// the way through); writes gather the session's frame bytes and referenced body slices
// into one writev(). A connection
// writes at most one OutputBuffer at a time and asks nghttp2 for more only when the
// socket has taken it all, so a slow peer leaves the bytes in the streams' queues, where
// flow control bounds them. Everything runs on the owning worker's thread.
//
// With TLS (use_tls), OpenSSL reads and writes the socket itself: reads decrypt into the
// same buffer, and writes gather the output into records of up to 16 KiB. The handshake
// runs inside those reads and writes; until it is done nothing reaches nghttp2.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <sys/uio.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>
#include <string_view>

#include "gateway/h2/byte_queue.h"
#include "gateway/h2/handler_memory.h"
#include "gateway/h2/socket_wait.h"

namespace infergate::gateway {

class Worker;

// The largest frame either leg advertises it will take (SETTINGS_MAX_FRAME_SIZE) and
// the largest DATA frame the gateway sends.
inline constexpr size_t kMaxFrameBytes = 256 * 1024;

class H2Connection {
 public:
  virtual ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Flushes after the current event's callbacks are over (changes made from another
  // connection's callbacks: never call into a session from inside another's). The
  // worker flushes these before the connection that read, so forwarded frames leave
  // before window updates.
  void schedule_flush();

  // Tears the connection down now: streams are told (on_teardown), the socket closes,
  // and the object is deleted once no handler refers to it.
  void close(std::string_view reason);

  bool closed() const { return closed_; }
  // True while the socket has not taken what the connection has to write, and since when.
  bool write_blocked() const { return write_blocked_; }
  std::chrono::steady_clock::time_point write_blocked_since() const { return write_blocked_since_; }

  // Called by the worker for a scheduled flush.
  void run_scheduled_flush();

  // Appends one DATA frame (9-byte header, then `length` bytes taken from `body` by
  // reference) to the output; for the sessions' send_data_callback. Returns
  // NGHTTP2_ERR_WOULDBLOCK when the output is full.
  int append_data_frame(const std::uint8_t* framehd, size_t length, ByteQueue& body,
                        SliceQueue* retain = nullptr);
  // The block that holds [data, data + length) when nghttp2 handed a callback bytes
  // straight from what this connection read (DATA payloads), else null: a queue may keep
  // a reference to it instead of a copy. Valid during the callback.
  const BlockRef* received_block(const std::uint8_t* data, size_t length) const;
  // Gives the receive block back to the pool if no stream points into it any more: after
  // each read event, and from the connections' ticks (so that a connection that went
  // quiet while a stream still held its last bytes does not keep a block).
  void release_idle_receive_block();
  nghttp2_session* session() const { return session_; }
  Worker& worker() const { return worker_; }

 protected:
  H2Connection(Worker& worker, boost::asio::ip::tcp::socket socket);

  // Takes ownership of the session; call before start().
  void set_session(nghttp2_session* session) { session_ = session; }
  // Takes ownership of `ssl` (set up on this socket, in accept or connect state); call
  // before start().
  void use_tls(SSL* ssl) { tls_ = ssl; }
  SSL* tls() const { return tls_; }
  // The TLS handshake completed (once).
  virtual void on_tls_ready() {}
  // The TLS handshake failed: the connection closes after this returns.
  virtual void on_tls_failed() {}
  // Starts the read loop and flushes whatever the session has queued (its SETTINGS).
  void start();
  boost::asio::ip::tcp::socket& socket() { return socket_; }

  // Brackets an asynchronous operation of a subclass whose handler uses `this`: the
  // object is not deleted while one is outstanding. Call release() first thing in the
  // handler; it returns false if the connection has closed meanwhile (then return).
  void hold() { ++pending_handlers_; }
  bool release();

  // Called once, from close(), before the session is deleted: detach every stream.
  virtual void on_teardown(std::string_view reason) = 0;
  // Called when the session wants neither to read nor to write (done).
  virtual void on_session_done() { close("session finished"); }
  // Called after each flush that left the connection open.
  virtual void after_flush() {}
  // Called when nghttp2 rejects what the peer sent with a fatal error (before the
  // connection flushes what it can and closes): a chance to queue a GOAWAY and count.
  virtual void on_recv_error(int nghttp2_error) { (void)nghttp2_error; }
  // True when the flushes a read causes should wait for the end of the event loop's turn
  // (plain TCP only): see DownstreamConnection.
  virtual bool batch_flushes() const { return false; }
  // Bytes read from the peer so far.
  std::uint64_t bytes_read() const { return bytes_read_; }

  static constexpr size_t kMaxOutputBytes = 1 << 20;

 private:
  // Waits for the socket to turn readable. `drained`: the last read found it empty, so
  // the wait needs no re-registration (SocketWait).
  void arm_read(bool drained);
  void on_readable();
  // The waits' completions.
  static void on_read_wait(void* connection, const boost::system::error_code& ec);
  static void on_write_wait(void* connection, const boost::system::error_code& ec);
  // Where the next read goes: the rest of the block the last reads filled, or a fresh
  // block when little is left of it.
  std::span<std::uint8_t> receive_space();
  // Reads what the socket (or OpenSSL) has into `buf`: bytes read, 0 when it has nothing
  // now, or -1 when the connection is over (closed, with a reason).
  ssize_t read_some(std::span<std::uint8_t> buf);
  // The same for plain TCP, into `buf` and then `extra` fresh blocks (rx_extra_) in one
  // readv: for a socket that the last read found fuller than its space.
  ssize_t read_wide(std::span<std::uint8_t> buf, size_t extra);
  ssize_t read_plain(const iovec* iov, int count);
  ssize_t read_tls(std::span<std::uint8_t> buf);
  // Hands the `n` bytes just read into rx_block_ after rx_used_ to nghttp2. False when
  // that closed the connection.
  bool receive(size_t n);
  bool write_tls(std::string* error);
  void flush();
  bool fill_output();
  // Writes as much of the output as the socket takes. False on a socket error (`error`
  // says what).
  bool write_output(std::string* error);
  void reap();

  Worker& worker_;
  DataSocket socket_;
  nghttp2_session* session_ = nullptr;
  OutputBuffer out_;
  // Reads land in pooled blocks, so that DATA payloads can be handed on by reference.
  // A block is kept between reads only while a stream still points into it (then the
  // next reads fill it on); otherwise it goes back to the pool when a read event ends
  // or at the next tick, so an idle connection holds none for long.
  BlockRef rx_block_;
  // The blocks a wide read filled on after rx_block_, in order: each becomes rx_block_
  // as nghttp2 reads it; those the read did not reach go back to the pool before that.
  static constexpr size_t kMaxExtraReadBlocks = 3;
  std::array<BlockRef, kMaxExtraReadBlocks> rx_extra_;
  // The operations of the read-side and write-side async_waits (one of each at a time):
  // the first read wait, TLS's write waits (and a TLS read's that must write first), and
  // every wait where SocketWait is not built.
  HandlerMemory read_wait_memory_;
  HandlerMemory write_wait_memory_;
#if INFERGATE_SOCKET_WAIT
  SocketWait read_wait_{SocketWait::Kind::kRead, &H2Connection::on_read_wait, this};
  SocketWait write_wait_{SocketWait::Kind::kWrite, &H2Connection::on_write_wait, this};
#endif
  std::uint32_t rx_used_ = 0;
  static constexpr std::uint32_t kMinReceiveSpace = 16 * 1024;
  bool started_ = false;
  bool write_blocked_ = false;
  std::chrono::steady_clock::time_point write_blocked_since_{};
  bool flush_posted_ = false;
  bool closed_ = false;
  bool reap_posted_ = false;
  std::uint64_t bytes_read_ = 0;
  int pending_handlers_ = 0;
  SSL* tls_ = nullptr;
  bool tls_ready_ = false;
  bool tls_write_wants_read_ = false;  // a write waits for the peer's bytes (handshake)
  bool tls_read_wants_write_ = false;  // a read waits for the socket to take bytes
};

}  // namespace infergate::gateway
