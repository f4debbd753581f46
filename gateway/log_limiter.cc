#include "gateway/log_limiter.h"

namespace infergate::gateway {

bool LogLimiter::allow(TimePoint now, std::uint64_t* suppressed) {
  if (!started_ || now - window_start_ >= window_) {
    started_ = true;
    window_start_ = now;
    written_ = 0;
  }
  if (written_ >= burst_) {
    ++dropped_;
    return false;
  }
  ++written_;
  *suppressed = dropped_;
  dropped_ = 0;
  return true;
}

}  // namespace infergate::gateway
