// A backend's channel whose last reference goes with a call's callback, on one of gRPC's
// own threads: the backend was removed while it was being probed. gRPC 1.51 runs
// callback-API completions on a process-wide queue that lives while some channel uses it;
// before BackendChannels kept that queue for the process, the channel let go last there
// joined its own thread and freed the queue under it, and the process aborted
// ("assertion failed: prior > 0"). Each test here runs in a process of its own (ctest)
// with no gRPC server in it, so nothing else holds the queue.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "health/backend_channels.h"
#include "health/grpc_probe_transport.h"

namespace infergate::health {
namespace {

using namespace std::chrono_literals;

// A TCP listener on 127.0.0.1 that never accepts: connections complete in the kernel and
// no HTTP/2 byte ever comes back, so every call fails (its deadline, or gRPC's wait for
// the server's SETTINGS), on one of gRPC's threads.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~SilentListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

// One probe's answer, waited for with a deadline.
class Answer {
 public:
  std::function<void(ProbeResult)> callback() {
    return [this](ProbeResult r) {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = std::move(r);
      cv_.notify_all();
    };
  }
  std::optional<ProbeResult> wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return result_.has_value(); });
    return result_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ProbeResult> result_;
};

TEST(ChannelRelease, ABackendRemovedWhileProbedLetsItsChannelGoSafely) {
  SilentListener first;
  auto channels = std::make_shared<BackendChannels>();
  channels->add(0, first.address());
  std::weak_ptr<BackendChannels::Stub> stub = channels->stub(0);
  Answer answer;
  {
    GrpcProbeTransport transport(channels);
    transport.probe(0, 300ms, answer.callback());
  }
  // The call's callback now holds the only reference to the channel.
  channels->remove(0);
  EXPECT_TRUE(stub.expired() == false) << "the call in flight keeps its channel";
  const std::optional<ProbeResult> r = answer.wait(10s);
  ASSERT_TRUE(r.has_value()) << "the probe was never answered";
  EXPECT_FALSE(r->ok);
  EXPECT_NE(r->detail.find("ServerLive"), std::string::npos) << r->detail;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!stub.expired() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // poll, with a deadline: gRPC drops the callback later
  }
  EXPECT_TRUE(stub.expired()) << "the callback never let its channel go";

  // gRPC still works in this process: a new backend's probe is answered.
  SilentListener second;
  channels->add(1, second.address());
  Answer later;
  GrpcProbeTransport(channels).probe(1, 200ms, later.callback());
  const std::optional<ProbeResult> r2 = later.wait(10s);
  ASSERT_TRUE(r2.has_value()) << "a later probe was never answered";
  EXPECT_FALSE(r2->ok);
}

}  // namespace
}  // namespace infergate::health
