// The health monitor destroyed while its probes and inventory calls are in flight, over
// the real gRPC transport against a server on 127.0.0.1 that holds those calls until the
// test lets them go. Their answers then arrive on gRPC threads, after the monitor (and,
// in one case, its io_context) is gone: they must touch neither. Under AddressSanitizer
// the monitor of before (whose gRPC callbacks called this->post()) fails here with a
// heap-use-after-free.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "health/backend_channels.h"
#include "health/grpc_probe_transport.h"
#include "health/health_monitor.h"
#include "inference/grpc_service.grpc.pb.h"

namespace infergate::health {
namespace {

using namespace std::chrono_literals;

// Counts events and waits for a number of them, with a deadline.
class Counter {
 public:
  void add() {
    std::lock_guard<std::mutex> lock(mu_);
    ++n_;
    cv_.notify_all();
  }
  int get() {
    std::lock_guard<std::mutex> lock(mu_);
    return n_;
  }
  bool wait_for(int n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return n_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

// A KServe server that answers ServerLive at once until hold_probes(), and afterwards
// holds each ServerLive until release(); it always holds RepositoryIndex.
class HoldingServer : public inference::GRPCInferenceService::CallbackService {
 public:
  void hold_probes() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_live_ = true;
  }
  // Answers every held call; later ones are answered at once.
  void release() {
    std::vector<grpc::ServerUnaryReactor*> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
      held.swap(held_);
    }
    for (grpc::ServerUnaryReactor* r : held) r->Finish(grpc::Status::OK);
  }

  Counter held_live;
  Counter held_index;

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    bool hold = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold = hold_live_;
    }
    return hold ? this->hold(context, held_live) : answer(context);
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(true);
    return answer(context);
  }
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* context,
                                            const inference::RepositoryIndexRequest*,
                                            inference::RepositoryIndexResponse* response) override {
    auto* m = response->add_models();
    m->set_name("identity");
    m->set_version("1");  // no state: a live monitor would ask ModelReady next
    return hold(context, held_index);
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse*) override {
    return answer(context);
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest*,
                                       inference::ModelReadyResponse* response) override {
    response->set_ready(true);
    return answer(context);
  }

 private:
  grpc::ServerUnaryReactor* answer(grpc::CallbackServerContext* context) {
    grpc::ServerUnaryReactor* r = context->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* hold(grpc::CallbackServerContext* context, Counter& arrived) {
    grpc::ServerUnaryReactor* r = context->DefaultReactor();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!released_) {
        held_.push_back(r);
        arrived.add();
        return r;
      }
    }
    r->Finish(grpc::Status::OK);
    return r;
  }

  std::mutex mu_;
  bool hold_live_ = false;
  bool released_ = false;
  std::vector<grpc::ServerUnaryReactor*> held_;
};

// The real transport, counting the calls it started and the answers it has delivered
// (counted after the monitor's callback returned).
class CountingTransport : public ProbeTransport {
 public:
  explicit CountingTransport(std::shared_ptr<ProbeTransport> inner) : inner_(std::move(inner)) {}

  void probe(std::uint32_t id, std::chrono::nanoseconds timeout,
             std::function<void(ProbeResult)> done) override {
    started.add();
    inner_->probe(id, timeout, [this, done = std::move(done)](ProbeResult r) {
      done(std::move(r));
      answered.add();
    });
  }
  void inventory(std::uint32_t id, std::chrono::nanoseconds timeout,
                 std::function<void(InventoryResult)> done) override {
    started.add();
    inner_->inventory(id, timeout, [this, done = std::move(done)](InventoryResult r) {
      done(std::move(r));
      answered.add();
    });
  }
  void model_ready(std::uint32_t id, const std::string& model, const std::string& version,
                   std::chrono::nanoseconds timeout,
                   std::function<void(bool, bool)> done) override {
    started.add();
    inner_->model_ready(id, model, version, timeout,
                        [this, done = std::move(done)](bool answered_, bool ready) {
                          done(answered_, ready);
                          answered.add();
                        });
  }

  Counter started;
  Counter answered;

 private:
  std::shared_ptr<ProbeTransport> inner_;
};

class MonitorShutdownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    io_ = std::make_unique<boost::asio::io_context>();
    work_.emplace(io_->get_executor());
    io_thread_ = std::thread([this] { io_->run(); });
    auto channels = std::make_shared<BackendChannels>();
    transport_ =
        std::make_shared<CountingTransport>(std::make_shared<GrpcProbeTransport>(channels));
    on_io([&] {
      channels->add(0, "127.0.0.1:" + std::to_string(port_));
      monitor_ = std::make_unique<HealthMonitor>(
          *io_, HealthOptions{.interval = 20ms, .timeout = 10s, .healthy_threshold = 1}, transport_,
          [this](std::shared_ptr<const routing::Fleet>) { published_.add(); }, nullptr, nullptr,
          [] { return std::chrono::steady_clock::now(); });
      monitor_->set_backends({{.name = "held", .address = "127.0.0.1:" + std::to_string(port_)}});
      monitor_->start();
    });
  }

  void TearDown() override {
    service_.release();  // so that the server's shutdown does not wait on held calls
    if (io_thread_.joinable()) stop_io();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 5s);
  }

  // Runs `fn` on the control thread and waits for it.
  void on_io(std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(*io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  void stop_io() {
    work_.reset();
    io_->stop();
    io_thread_.join();
  }

  // Waits until the monitor has one ServerLive and one RepositoryIndex in flight.
  void put_calls_in_flight() {
    // The first probes are answered; the backend becomes healthy and is inventoried.
    ASSERT_TRUE(service_.held_index.wait_for(1, 10s)) << "no RepositoryIndex arrived";
    service_.hold_probes();
    ASSERT_TRUE(service_.held_live.wait_for(1, 10s)) << "no ServerLive held";
  }

  // Lets the held calls go and waits until the transport has delivered every answer.
  void answer_after_death() {
    const int started = transport_->started.get();
    service_.release();
    EXPECT_TRUE(transport_->answered.wait_for(started, 10s))
        << transport_->answered.get() << " of " << started << " answers delivered";
  }

  int port_ = 0;
  HoldingServer service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::shared_ptr<CountingTransport> transport_;
  std::unique_ptr<HealthMonitor> monitor_;
  Counter published_;
};

TEST_F(MonitorShutdownTest, AnswersAfterTheMonitorDiedTouchNothing) {
  put_calls_in_flight();
  on_io([&] { monitor_.reset(); });
  const int published = published_.get();
  answer_after_death();
  // The control thread ran whatever the late answers posted; nothing reached the dead
  // monitor (it would have published the inventory).
  on_io([] {});
  EXPECT_EQ(published_.get(), published);
}

TEST_F(MonitorShutdownTest, AnswersAfterTheIoContextDiedTouchNothing) {
  put_calls_in_flight();
  // The gateway's order: the control loop stops, the monitor goes, then the io_context.
  stop_io();
  monitor_.reset();
  io_.reset();
  answer_after_death();
}

TEST_F(MonitorShutdownTest, ReportsFromOtherThreadsAfterDeathDoNothing) {
  put_calls_in_flight();
  std::function<void(std::uint32_t)> report = monitor_->outlier_reporter();
  std::function<void(HealthMonitor::Settled)> refresh = monitor_->inventory_refresher();
  bool settled = false;
  on_io([&] { monitor_.reset(); });
  const int published = published_.get();
  std::thread worker([&] {
    report(0);
    refresh([&] { settled = true; });
  });
  worker.join();
  EXPECT_TRUE(settled) << "a caller waiting for the inventory is not left hanging";
  on_io([] {});
  EXPECT_EQ(published_.get(), published);
  answer_after_death();
}

}  // namespace
}  // namespace infergate::health
