#include "gateway/h2/h2_connection.h"

#include <openssl/err.h>
#include <sys/uio.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <climits>
#include <cstring>

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
  if (tls_ != nullptr) SSL_free(tls_);
}

void H2Connection::start() {
  started_ = true;
  arm_read(/*drained=*/false);  // the peer may have written already
  flush();
}

void H2Connection::arm_read(bool drained) {
  ++pending_handlers_;
#if INFERGATE_SOCKET_WAIT
  if (drained) return read_wait_.start(socket_);
#else
  (void)drained;
#endif
  // Re-registers the socket: epoll reports bytes that are there already.
  socket_.async_wait(boost::asio::ip::tcp::socket::wait_read,
                     with_memory(read_wait_memory_, [this](const boost::system::error_code& ec) {
                       on_read_wait(this, ec);
                     }));
}

void H2Connection::on_read_wait(void* connection, const boost::system::error_code& ec) {
  auto* self = static_cast<H2Connection*>(connection);
  --self->pending_handlers_;
  if (self->closed_) return self->reap();
  if (ec) return self->close(ec.message());
  self->on_readable();
}

void H2Connection::on_write_wait(void* connection, const boost::system::error_code& ec) {
  auto* self = static_cast<H2Connection*>(connection);
  --self->pending_handlers_;
  self->write_blocked_ = false;
  if (self->closed_) return self->reap();
  if (ec) return self->close(ec.message());
  self->flush();
}

std::span<std::uint8_t> H2Connection::receive_space() {
  if (rx_block_ && rx_block_.get()->refs == 1) rx_used_ = 0;  // nobody points into it
  if (!rx_block_ || Block::kSize - rx_used_ < kMinReceiveSpace) {
    rx_block_ = worker_.blocks().acquire();
    rx_used_ = 0;
  }
  return {rx_block_.data() + rx_used_, Block::kSize - rx_used_};
}

void H2Connection::release_idle_receive_block() {
  // Nobody points into the block any more (what was read has been written on or
  // dropped): it goes back to the pool, and the next read takes one again.
  if (rx_block_ && rx_block_.get()->refs == 1) rx_block_.reset();
}

const BlockRef* H2Connection::received_block(const std::uint8_t* data, size_t length) const {
  if (!rx_block_) return nullptr;
  const std::uint8_t* begin = rx_block_.data();
  if (data < begin || data + length > begin + rx_used_) return nullptr;
  return &rx_block_;
}

void H2Connection::on_readable() {
  // Bounded so one busy connection cannot starve the others on this worker: up to 512 KiB
  // (8 blocks; TLS reads one record of up to 16 KiB at a time, 64 of them), and what was
  // read is forwarded before the next event, while it is still in the cache. A read that
  // fills all its space says the socket holds more: the next one takes up to four blocks
  // in one readv (a large message costs a quarter of the reads).
  int blocks_left = tls_ != nullptr ? 64 : 8;
  const Worker::ReadScope scope(worker_);
  // True once a read has found the socket empty (EAGAIN): then a new edge reports what
  // comes next.
  bool drained = false;
  bool filled = false;
  while (blocks_left > 0) {
    const std::span<std::uint8_t> buf = receive_space();
    const size_t extra = filled && tls_ == nullptr
                             ? std::min(kMaxExtraReadBlocks, static_cast<size_t>(blocks_left - 1))
                             : 0;
    const ssize_t n = extra > 0 ? read_wide(buf, extra) : read_some(buf);
    blocks_left -= 1 + static_cast<int>(extra);
    if (n < 0 || closed_) return;
    const auto got = static_cast<size_t>(n);
    // The blocks the read did not reach go back before its bytes are fed: they count
    // against the buffer budget that streams consult meanwhile.
    const size_t reached = got > buf.size() ? (got - buf.size() - 1) / Block::kSize + 1 : 0;
    for (size_t i = reached; i < extra; ++i) rx_extra_[i].reset();
    if (got == 0) {
      // OpenSSL may want the socket to take bytes instead (then it waits for that).
      drained = !tls_read_wants_write_;
      break;
    }
    bytes_read_ += got;
    filled = got == buf.size() + extra * Block::kSize;
    size_t taken = std::min(got, buf.size());
    if (!receive(taken)) return;
    // Each block the read reached becomes the receive block as nghttp2 reads it.
    for (size_t i = 0; taken < got; ++i) {
      const size_t part = std::min(got - taken, Block::kSize);
      rx_block_ = std::move(rx_extra_[i]);
      rx_used_ = 0;
      if (!receive(part)) return;
      taken += part;
    }
    // A short read has not emptied the socket for certain: an end of stream or a reset
    // that came with the bytes waits behind them and raises no new edge. The next read
    // says which (EAGAIN, the end, or the error).
  }
  // Many clients: what this read caused waits, with this connection's own frames, for the
  // flush after every connection readable in this turn has been read, so that their
  // requests to one backend leave in one writev (the worker posts that flush). Only when
  // no stream points into the receive block (small messages are copied out of it): it goes
  // back to the pool now, so a turn over many connections does not hold one each.
  bool batched = false;
  if (tls_ == nullptr && batch_flushes()) {
    release_idle_receive_block();
    batched = !rx_block_;
  }
  if (batched) {
    schedule_flush();
  } else {
    // What this read caused elsewhere (requests to backends, answers to clients) goes
    // out first; this connection's own frames (window updates) after.
    worker_.flush_dirty();
    if (closed_) return;
    tls_write_wants_read_ = false;  // what the read brought may let a waiting write go on
    flush();
    if (closed_) return;
    release_idle_receive_block();
  }
  ++pending_handlers_;
  if (tls_read_wants_write_) {
    // OpenSSL must write before it can read on: once the socket takes bytes.
    tls_read_wants_write_ = false;
    socket_.async_wait(boost::asio::ip::tcp::socket::wait_write,
                       with_memory(read_wait_memory_, [this](const boost::system::error_code& ec) {
                         --pending_handlers_;
                         if (closed_) return reap();
                         if (ec) return close(ec.message());
                         on_readable();
                       }));
  } else if (!drained || (tls_ != nullptr && SSL_pending(tls_) > 0)) {
    // The reads stopped at their limit (the socket may still hold bytes, an end of stream
    // or a reset), or decrypted bytes wait inside OpenSSL: neither raises a new event, so
    // reading goes on from a handler of its own, after the other connections' events of
    // this turn.
    boost::asio::post(worker_.io(), [this] {
      --pending_handlers_;
      if (closed_) return reap();
      on_readable();
    });
  } else {
    --pending_handlers_;
    arm_read(/*drained=*/true);
  }
}

bool H2Connection::receive(size_t n) {
  const std::uint8_t* bytes = rx_block_.data() + rx_used_;
  rx_used_ += static_cast<std::uint32_t>(n);  // from here on these bytes never change
  // The block stays while nghttp2 reads it, even if a callback closes the connection.
  const BlockRef reading = rx_block_;
  const ssize_t rv = nghttp2_session_mem_recv(session_, bytes, n);
  if (closed_) return false;
  if (rv < 0) {
    // nghttp2 has queued a GOAWAY for most protocol errors: send it, then close.
    on_recv_error(static_cast<int>(rv));
    if (closed_) return false;
    flush();
    close(std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(rv)));
    return false;
  }
  return true;
}

ssize_t H2Connection::read_some(std::span<std::uint8_t> buf) {
  if (tls_ != nullptr) return read_tls(buf);
  const iovec one{buf.data(), buf.size()};
  return read_plain(&one, 1);
}

ssize_t H2Connection::read_wide(std::span<std::uint8_t> buf, size_t extra) {
  std::array<iovec, 1 + kMaxExtraReadBlocks> iov;
  iov[0] = {buf.data(), buf.size()};
  for (size_t i = 0; i < extra; ++i) {
    rx_extra_[i] = worker_.blocks().acquire();
    iov[i + 1] = {rx_extra_[i].data(), Block::kSize};
  }
  return read_plain(iov.data(), static_cast<int>(1 + extra));
}

ssize_t H2Connection::read_plain(const iovec* iov, int count) {
  const int fd = socket_.native_handle();
  for (;;) {
    const ssize_t n =
        count == 1 ? ::read(fd, iov->iov_base, iov->iov_len) : ::readv(fd, iov, count);
    if (n > 0) return n;
    if (n == 0) {
      close("peer closed the connection");
      return -1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    close(std::string("read failed: ") + std::strerror(errno));
    return -1;
  }
}

ssize_t H2Connection::read_tls(std::span<std::uint8_t> buf) {
  ERR_clear_error();
  errno = 0;
  size_t got = 0;
  const int rc = SSL_read_ex(tls_, buf.data(), buf.size(), &got);
  const int saved_errno = errno;
  if (!tls_ready_ && SSL_is_init_finished(tls_)) {
    tls_ready_ = true;
    on_tls_ready();
    if (closed_) return -1;
  }
  if (rc == 1) return static_cast<ssize_t>(got);
  const int err = SSL_get_error(tls_, rc);
  if (err == SSL_ERROR_WANT_READ) return 0;
  if (err == SSL_ERROR_WANT_WRITE) {
    tls_read_wants_write_ = true;
    return 0;
  }
  if (err == SSL_ERROR_ZERO_RETURN) {
    close("peer closed the connection (TLS close_notify)");
    return -1;
  }
  const bool silent = err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0;
  if (!tls_ready_) {
    // A peer that closed before sending a byte (a TCP probe) did not try TLS at all.
    if (!(silent && BIO_number_read(SSL_get_rbio(tls_)) == 0)) on_tls_failed();
    if (!closed_) close("TLS handshake failed");
    return -1;
  }
  if (silent) {
    close(saved_errno == 0 ? std::string("peer closed the connection")
                           : std::string("read failed: ") + std::strerror(saved_errno));
    return -1;
  }
  char reason[256];
  ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
  close(std::string("TLS error: ") + reason);
  return -1;
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
  if (!closed_) release_idle_receive_block();
}

void H2Connection::flush() {
  if (closed_ || write_blocked_ || !started_) return;
  for (;;) {
    if (out_.empty() && !fill_output()) return;  // closed on a session error
    if (out_.empty()) break;
    std::string error;
    if (!write_output(&error)) return close("write failed: " + error);
    if (!out_.empty()) {
      // The TLS handshake waits for the peer: the next read goes on with it, and flushes.
      if (tls_write_wants_read_) return;
      // The socket is full: wait until it drains, then go on.
      write_blocked_ = true;
      write_blocked_since_ = std::chrono::steady_clock::now();
      ++pending_handlers_;
#if INFERGATE_SOCKET_WAIT
      // The socket has just refused bytes: room made from here on is a new edge.
      if (tls_ == nullptr) {
        write_wait_.start(socket_);
        return;
      }
#endif
      socket_.async_wait(
          boost::asio::ip::tcp::socket::wait_write,
          with_memory(write_wait_memory_,
                      [this](const boost::system::error_code& ec) { on_write_wait(this, ec); }));
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

bool H2Connection::write_output(std::string* error) {
  if (tls_ != nullptr) return write_tls(error);
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
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      *error = std::strerror(errno);
      return false;
    }
    out_.consume_front(static_cast<size_t>(n));
  }
  return true;
}

bool H2Connection::write_tls(std::string* error) {
  // Frame headers and body slices gathered into one TLS record at a time (a record per
  // 9-byte frame header would cost a syscall and 22 bytes each).
  std::uint8_t record[16384];
  while (!out_.empty()) {
    size_t length = 0;
    for (const Slice& s : out_.slices()) {
      const size_t n = std::min<size_t>(s.length, sizeof record - length);
      std::memcpy(record + length, s.data(), n);
      length += n;
      if (length == sizeof record) break;
    }
    ERR_clear_error();
    size_t written = 0;
    const int rc = SSL_write_ex(tls_, record, length, &written);
    if (!tls_ready_ && SSL_is_init_finished(tls_)) {
      tls_ready_ = true;
      on_tls_ready();
      if (closed_) return true;
    }
    if (rc == 1) {
      out_.consume_front(written);
      continue;
    }
    const int err = SSL_get_error(tls_, rc);
    if (err == SSL_ERROR_WANT_WRITE) return true;
    if (err == SSL_ERROR_WANT_READ) {
      tls_write_wants_read_ = true;
      return true;
    }
    char reason[256];
    ERR_error_string_n(ERR_peek_error(), reason, sizeof reason);
    *error = ERR_peek_error() != 0 ? std::string(reason) : std::string(std::strerror(errno));
    if (!tls_ready_) on_tls_failed();  // reads (and clears) OpenSSL's errors
    return false;
  }
  return true;
}

int H2Connection::append_data_frame(const std::uint8_t* framehd, size_t length, ByteQueue& body,
                                    SliceQueue* retain) {
  // A frame put off with WOULDBLOCK is asked for again with the same length; if its
  // stream dropped its bytes meanwhile (a reset, a discarded request), the frame cannot
  // be sent: nghttp2 resets that stream instead (never read past the queue).
  if (body.size() < length) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (out_.size() >= kMaxOutputBytes) return NGHTTP2_ERR_WOULDBLOCK;
  out_.append_copy({framehd, 9});
  body.take(length, out_, retain);
  return 0;
}

void H2Connection::close(std::string_view reason) {
  if (closed_) return;
  closed_ = true;
  on_teardown(reason);
  // close_notify, when the handshake was done (whatever the socket takes now).
  if (tls_ != nullptr && tls_ready_) {
    ERR_clear_error();
    SSL_shutdown(tls_);
    ERR_clear_error();
  }
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
  rx_block_.reset();
  for (BlockRef& block : rx_extra_) block.reset();
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
