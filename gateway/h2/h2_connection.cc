#include "gateway/h2/h2_connection.h"

#include <sys/uio.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <climits>

#include "gateway/worker.h"

namespace infergate::gateway {

H2Connection::H2Connection(Worker& worker, boost::asio::ip::tcp::socket socket)
    : worker_(worker), socket_(std::move(socket)), out_(worker.blocks()) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
}

H2Connection::~H2Connection() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void H2Connection::start() {
  started_ = true;
  arm_read();
  flush();
}

void H2Connection::arm_read() {
  ++pending_handlers_;
  socket_.async_wait(boost::asio::ip::tcp::socket::wait_read,
                     [this](const boost::system::error_code& ec) {
                       --pending_handlers_;
                       if (closed_) return reap();
                       if (ec) return close(ec.message());
                       on_readable();
                     });
}

void H2Connection::on_readable() {
  std::span<std::uint8_t> buf = worker_.read_buffer();
  // Bounded so one busy connection cannot starve the others on this worker.
  for (int round = 0; round < 8; ++round) {
    ssize_t n = ::read(socket_.native_handle(), buf.data(), buf.size());
    if (n > 0) {
      bytes_read_ += static_cast<std::uint64_t>(n);
      ssize_t rv = nghttp2_session_mem_recv(session_, buf.data(), static_cast<size_t>(n));
      if (closed_) return;
      if (rv < 0) {
        // nghttp2 has queued a GOAWAY for most protocol errors: send it, then close.
        on_recv_error(static_cast<int>(rv));
        if (closed_) return;
        flush();
        return close(std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(rv)));
      }
      if (static_cast<size_t>(n) < buf.size()) break;
      continue;
    }
    if (n == 0) return close("peer closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return close(std::string("read failed: ") + std::strerror(errno));
  }
  // What this read caused elsewhere (requests to backends, answers to clients) goes
  // out first; this connection's own frames (window updates) after.
  worker_.flush_dirty();
  if (closed_) return;
  flush();
  if (!closed_) arm_read();
}

void H2Connection::schedule_flush() {
  if (flush_posted_ || closed_) return;
  flush_posted_ = true;
  ++pending_handlers_;
  worker_.mark_dirty(this);
}

void H2Connection::run_scheduled_flush() {
  --pending_handlers_;
  flush_posted_ = false;
  if (closed_) return reap();
  flush();
}

void H2Connection::flush() {
  if (closed_ || write_blocked_ || !started_) return;
  for (;;) {
    if (out_.empty() && !fill_output()) return;  // closed on a session error
    if (out_.empty()) break;
    if (!write_output()) return close(std::string("write failed: ") + std::strerror(errno));
    if (!out_.empty()) {
      // The socket is full: wait until it drains, then go on.
      write_blocked_ = true;
      write_blocked_since_ = std::chrono::steady_clock::now();
      ++pending_handlers_;
      socket_.async_wait(boost::asio::ip::tcp::socket::wait_write,
                         [this](const boost::system::error_code& ec) {
                           --pending_handlers_;
                           write_blocked_ = false;
                           if (closed_) return reap();
                           if (ec) return close(ec.message());
                           flush();
                         });
      return;
    }
  }
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    on_session_done();
    return;
  }
  after_flush();
}

bool H2Connection::fill_output() {
  while (out_.size() < kMaxOutputBytes) {
    const std::uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (closed_) return false;
    if (n < 0) {
      close(std::string("HTTP/2 send error: ") + nghttp2_strerror(static_cast<int>(n)));
      return false;
    }
    if (n == 0) break;
    out_.append_copy({data, static_cast<size_t>(n)});
  }
  return true;
}

bool H2Connection::write_output() {
  constexpr int kMaxIov = 256;
  iovec iov[kMaxIov];
  while (!out_.empty()) {
    int count = 0;
    for (const Slice& s : out_.slices()) {
      if (count == kMaxIov) break;
      iov[count++] = iovec{const_cast<std::uint8_t*>(s.data()), s.length};
    }
    ssize_t n = ::writev(socket_.native_handle(), iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    out_.consume_front(static_cast<size_t>(n));
  }
  return true;
}

int H2Connection::append_data_frame(const std::uint8_t* framehd, size_t length, ByteQueue& body,
                                    SliceQueue* retain) {
  if (out_.size() >= kMaxOutputBytes) return NGHTTP2_ERR_WOULDBLOCK;
  out_.append_copy({framehd, 9});
  body.take(length, out_, retain);
  return 0;
}

void H2Connection::close(std::string_view reason) {
  if (closed_) return;
  closed_ = true;
  on_teardown(reason);
  // Unread input would make the kernel answer the close with RST and drop what is still
  // unsent (a GOAWAY saying why): read what has arrived first, so the close is a FIN.
  if (socket_.is_open()) {
    std::span<std::uint8_t> buf = worker_.read_buffer();
    for (int round = 0; round < 16; ++round) {
      if (::read(socket_.native_handle(), buf.data(), buf.size()) <= 0) break;
    }
  }
  boost::system::error_code ec;
  socket_.close(ec);  // cancels the pending waits; their handlers see closed_
  out_.clear();
  reap();
}

bool H2Connection::release() {
  --pending_handlers_;
  if (closed_) {
    reap();
    return false;
  }
  return true;
}

void H2Connection::reap() {
  if (pending_handlers_ > 0 || reap_posted_) return;
  // Deleted from a fresh handler, never from inside a callback that may still use it.
  reap_posted_ = true;
  boost::asio::post(worker_.io(), [this] { worker_.destroy_connection(this); });
}

}  // namespace infergate::gateway
