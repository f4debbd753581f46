// infergate-sim: a simulated NVIDIA Triton server for tests, benchmarks and the demo.
// Wiring only: parse options, start the gRPC (and metrics) servers, print where they
// listen, wait for SIGTERM/SIGINT, shut down in order.
#include <grpcpp/grpcpp.h>

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <fstream>
#include <sstream>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/sim/metrics_http.h"
#include "benchmarks/sim/metrics_text.h"
#include "benchmarks/sim/sim_service.h"

namespace infergate::sim {
namespace {

// Shutdown lets booked executions finish (they end at known times), plus a margin for
// their answers and for clients to take the GOAWAY, up to a cap; then it cancels the rest.
constexpr std::chrono::milliseconds kShutdownMargin{250};
constexpr std::chrono::seconds kShutdownCap{10};

std::chrono::system_clock::time_point shutdown_deadline(const ModelRegistry& registry) {
  const auto now = std::chrono::steady_clock::now();
  const auto busy =
      std::clamp(std::chrono::duration_cast<std::chrono::nanoseconds>(registry.idle_at() - now),
                 std::chrono::nanoseconds(0), std::chrono::nanoseconds(kShutdownCap));
  return std::chrono::system_clock::now() + busy + kShutdownMargin;
}

// Keeps freed memory in the process (one arena, no per-allocation mmap, trim only above
// 256 MiB): otherwise every large tensor buffer is fresh memory, and on the VMs this runs
// on its page faults cost several times the copies themselves (9 ms vs 1.2 ms of CPU per
// 1 MiB identity request). Must run before any thread starts.
void tune_allocator() {
#ifdef __GLIBC__
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

std::unique_ptr<grpc::Server> start_grpc(const SimOptions& o, SimService& service,
                                         SimHealthService& health, int* port) {
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!o.tls_cert.empty()) {
    auto read = [](const std::string& path) {
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    };
    grpc::SslServerCredentialsOptions tls;
    tls.pem_key_cert_pairs.push_back({read(o.tls_key), read(o.tls_cert)});
    credentials = grpc::SslServerCredentials(tls);
  }
  builder.AddListeningPort(o.listen.to_string(), credentials, port);
  builder.RegisterService(&service);
  builder.RegisterService(&health);
  builder.SetMaxReceiveMessageSize(INT_MAX);
  builder.SetMaxSendMessageSize(INT_MAX);
  // Two simulators must not share a port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  return builder.BuildAndStart();
}

int serve(const SimOptions& o, const sigset_t& signals) {
  ModelRegistry registry(o);
  InferPipeline pipeline(o, registry);
  TimerThread timers;
  HangRegistry hangs;
  InflightGauge inflight;
  AdminStore admin;
  SimRuntime rt{.options = o,
                .registry = registry,
                .pipeline = pipeline,
                .timers = timers,
                .hangs = hangs,
                .inflight = inflight,
                .admin = admin};
  SimService service(rt);
  SimHealthService health(rt);
  int port = 0;
  std::unique_ptr<grpc::Server> server = start_grpc(o, service, health, &port);
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "infergate-sim: cannot listen on %s\n", o.listen.to_string().c_str());
    return 1;
  }
  std::unique_ptr<MetricsHttpServer> metrics;
  if (o.metrics_listen) {
    std::string error;
    metrics = MetricsHttpServer::start(
        *o.metrics_listen,
        [&] { return render_metrics(o, registry, inflight, std::chrono::steady_clock::now()); },
        &error);
    if (metrics == nullptr) {
      std::fprintf(stderr, "infergate-sim: metrics: %s\n", error.c_str());
      server->Shutdown(std::chrono::system_clock::now());
      return 1;
    }
  }
  const config::HostPort bound{.host = o.listen.host, .port = static_cast<std::uint16_t>(port)};
  std::printf("infergate-sim %s listening on %s\n", o.name.c_str(), bound.to_string().c_str());
  if (metrics) {
    const config::HostPort m{.host = o.metrics_listen->host, .port = metrics->port()};
    std::printf("infergate-sim %s metrics on %s\n", o.name.c_str(), m.to_string().c_str());
  }
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  hangs.close_and_abort_all();  // held calls end now
  server->Shutdown(shutdown_deadline(registry));
  if (metrics) metrics->stop();
  timers.stop();  // releases the timers' references to calls that were cancelled
  return 0;
}

}  // namespace
}  // namespace infergate::sim

int main(int argc, char** argv) {
  using namespace infergate::sim;
  SimParse parsed = parse_sim_args(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    std::fprintf(stderr, "infergate-sim: %s (see --help)\n", parsed.error.c_str());
    return 2;
  }
  if (parsed.options.help) {
    std::printf("%s", sim_usage().c_str());
    return 0;
  }
  // Only sigwait sees these: they are blocked before any thread starts, so every thread
  // inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  tune_allocator();
  return serve(parsed.options, signals);
}
