// A wait for a socket to turn readable or writable that leaves its epoll registration as
// it is.
//
// asio's async_wait re-registers the socket (EPOLL_CTL_MOD) on every call, so that a
// readiness that came before the wait is reported again. A connection that has just read
// its socket dry, or whose write has just been refused, does not need that: asio
// registers every socket edge-triggered, so bytes (or room) that come from here on raise
// a fresh event. A read wait must come after a read that returned EAGAIN (a short read
// is not enough), so on the read side the epoll_ctl mostly becomes that read (asio's reads
// pay the same); write waits save it outright: about 4 syscalls of 57 per 1 MiB request
// through the gateway (benchmarks/RESULTS.md, ninth session).
//
// SocketWait queues a wait operation on the io_context's reactor the way asio's own reads
// do (no re-registration; a write wait adds EPOLLOUT to the registration the first time,
// as asio does). This reaches into asio's reactor, which is not public API, so it is
// built only for the asio it was written and tested against (Boost 1.74 on epoll,
// Debian 12's); elsewhere kSocketWaitAvailable is false and callers use async_wait.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION == 107400 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_ENABLE_HANDLER_TRACKING)
#define INFERGATE_SOCKET_WAIT 1
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#else
#define INFERGATE_SOCKET_WAIT 0
#endif

namespace infergate::gateway {

inline constexpr bool kSocketWaitAvailable = INFERGATE_SOCKET_WAIT != 0;

// A tcp::socket that lets a SocketWait reach its reactor registration.
class DataSocket : public boost::asio::ip::tcp::socket {
 public:
  explicit DataSocket(boost::asio::ip::tcp::socket&& socket)
      : boost::asio::ip::tcp::socket(std::move(socket)) {}
#if INFERGATE_SOCKET_WAIT
  boost::asio::detail::reactor::per_descriptor_data& reactor_data() {
    return impl_.get_implementation().reactor_data_;
  }
#endif
};

#if INFERGATE_SOCKET_WAIT

// One outstanding wait at a time, reused: no allocation per wait. The owner keeps it alive
// until its callback has run (a close cancels it: the callback gets operation_aborted).
class SocketWait final : public boost::asio::detail::reactor_op {
 public:
  using Callback = void (*)(void* target, const boost::system::error_code& ec);
  enum class Kind { kRead, kWrite };

  SocketWait(Kind kind, Callback callback, void* target)
      : reactor_op(boost::system::error_code(), &perform, &complete),
        kind_(kind),
        callback_(callback),
        target_(target) {}
  SocketWait(const SocketWait&) = delete;
  SocketWait& operator=(const SocketWait&) = delete;

  // Waits for the next readiness edge on `socket`. Only correct after a read that found
  // the socket empty (EAGAIN: a short read is not enough, an end of stream or a reset may
  // wait behind its bytes) or a write it refused: a readiness that is already there
  // raises no new edge. The callback gets success when the edge comes, operation_aborted
  // when the socket is closed first, and asio's error when it could not queue the wait
  // (bad_descriptor: the socket is not open).
  //
  // Only for an io_context run by one thread (a worker's, io_context{1}): between the
  // wait being queued and starting_ going false, another thread's event would be taken
  // for the speculative try and lost.
  void start(DataSocket& socket) {
    if (reactor_ == nullptr) {
      reactor_ = &boost::asio::use_service<boost::asio::detail::reactor>(
          boost::asio::query(socket.get_executor(), boost::asio::execution::context));
    }
    ec_ = boost::system::error_code();
    // asio first tries an operation at once, unless the socket has reported end of
    // stream: this wait says "not yet" to that try and "ready" to every later call,
    // which only an event makes.
    starting_ = true;
    reactor_->start_op(kind_ == Kind::kRead ? boost::asio::detail::reactor::read_op
                                            : boost::asio::detail::reactor::write_op,
                       socket.native_handle(), socket.reactor_data(), this,
                       /*is_continuation=*/false, /*allow_speculative=*/true);
    starting_ = false;
  }

 private:
  static status perform(reactor_op* base) {
    return static_cast<SocketWait*>(base)->starting_ ? not_done : done;
  }
  static void complete(void* owner, boost::asio::detail::operation* base,
                       const boost::system::error_code&, std::size_t) {
    // owner is null when the io_context is destroyed with the wait queued: the memory is
    // the owner's, and nothing is called.
    if (owner == nullptr) return;
    auto* self = static_cast<SocketWait*>(base);
    self->callback_(self->target_, self->ec_);
  }

  Kind kind_;
  boost::asio::detail::reactor* reactor_ = nullptr;  // the socket's io_context's
  bool starting_ = false;
  Callback callback_;
  void* target_;
};

#endif

}  // namespace infergate::gateway
