// The part of an HTTP/2 connection both legs share: a non-blocking socket driven by the
// worker's io_context, an nghttp2 session, and the read/flush/write loop between them.
//
// Reads go through the worker's shared read buffer straight into nghttp2; writes gather
// the session's frame bytes and referenced body slices into one writev(). A connection
// writes at most one OutputBuffer at a time and asks nghttp2 for more only when the
// socket has taken it all, so a slow peer leaves the bytes in the streams' queues, where
// flow control bounds them. Everything runs on the owning worker's thread.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>
#include <string_view>

#include "gateway/h2/byte_queue.h"

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
  nghttp2_session* session() const { return session_; }
  Worker& worker() const { return worker_; }

 protected:
  H2Connection(Worker& worker, boost::asio::ip::tcp::socket socket);

  // Takes ownership of the session; call before start().
  void set_session(nghttp2_session* session) { session_ = session; }
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
  // Bytes read from the peer so far.
  std::uint64_t bytes_read() const { return bytes_read_; }

  static constexpr size_t kMaxOutputBytes = 1 << 20;

 private:
  void arm_read();
  void on_readable();
  void flush();
  bool fill_output();
  // Writes as much of the output as the socket takes. False on a socket error.
  bool write_output();
  void reap();

  Worker& worker_;
  boost::asio::ip::tcp::socket socket_;
  nghttp2_session* session_ = nullptr;
  OutputBuffer out_;
  bool started_ = false;
  bool write_blocked_ = false;
  std::chrono::steady_clock::time_point write_blocked_since_{};
  bool flush_posted_ = false;
  bool closed_ = false;
  bool reap_posted_ = false;
  std::uint64_t bytes_read_ = 0;
  int pending_handlers_ = 0;
};

}  // namespace infergate::gateway
