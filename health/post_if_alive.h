// The one helper for "run this on the target's io_context, if the target still lives by
// then", for work that finishes on another thread (a gRPC completion, a thread pool, a
// timer thread) and must come back to an object that may be gone.
//
// The target owns a Lifeline made on the executor it lives on. A callback that may run
// on another thread holds a Lifeline::Link (cheap to copy) and calls
// link.post_if_alive(fn) there, never the target itself:
//
//   transport->probe(id, timeout, [this, link = lifeline_.link(), id](ProbeResult r) {
//     link.post_if_alive([this, id, r = std::move(r)] { on_probe(id, r); });
//   });
//
// What close() (and so the Lifeline's destructor) guarantees:
//  - once it returns, no post_if_alive() reaches the executor: a thread that outlives
//    the target never touches its io_context either, which may die right after it;
//  - a function posted before it that has not run yet is destroyed without being called.
// close() must run on the executor's thread, or while nothing runs that executor: that
// is what makes "not closed" at the moment a posted function starts mean "alive".
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <mutex>
#include <utility>

namespace infergate {

class Lifeline {
  struct State {
    explicit State(boost::asio::any_io_executor e) : executor(std::move(e)) {}
    std::mutex mu;  // held while posting, so that close() waits out a post in progress
    std::atomic<bool> open{true};
    boost::asio::any_io_executor executor;
  };

 public:
  // What a callback on another thread holds instead of a pointer to the target.
  class Link {
   public:
    Link() = default;

    // Posts `fn` to the target's executor; it runs there only if the target is still
    // alive when it comes up. Returns false (and drops `fn`) if the target is already
    // gone. Any thread.
    template <typename Fn>
    bool post_if_alive(Fn fn) const {
      return post_if_alive(std::move(fn), [] {});
    }

    // As above, but `otherwise` runs instead of `fn` when the target is gone: at once,
    // on the calling thread, if it is gone already; else on the executor's thread, when
    // `fn` comes up. (For giving back what `fn` would have taken, e.g. a grant.) Neither
    // runs if the executor is destroyed with `fn` still queued. Any thread.
    template <typename Fn, typename Otherwise>
    bool post_if_alive(Fn fn, Otherwise otherwise) const {
      if (!state_) {
        otherwise();
        return false;
      }
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (state_->open.load(std::memory_order_acquire)) {
          boost::asio::post(state_->executor, [state = state_, fn = std::move(fn),
                                               otherwise = std::move(otherwise)]() mutable {
            if (state->open.load(std::memory_order_acquire)) {
              fn();
            } else {
              otherwise();
            }
          });
          return true;
        }
      }
      otherwise();
      return false;
    }

    // Whether the target is still alive. Meaningful on the executor's thread (elsewhere,
    // the answer may be stale at once); for handlers that the target's own timers or
    // sockets complete there.
    bool alive() const { return state_ && state_->open.load(std::memory_order_acquire); }

   private:
    friend class Lifeline;
    explicit Link(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };

  explicit Lifeline(boost::asio::any_io_executor executor)
      : state_(std::make_shared<State>(std::move(executor))) {}
  ~Lifeline() { close(); }

  Lifeline(const Lifeline&) = delete;
  Lifeline& operator=(const Lifeline&) = delete;

  Link link() const { return Link(state_); }

  // The target is going away; see the guarantees above. Idempotent. The executor's
  // thread, or while nothing runs the executor.
  void close() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->open.store(false, std::memory_order_release);
  }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace infergate
