// Test fleets: infergate-sim backends and an infergate gateway as real processes on
// 127.0.0.1 with OS-chosen ports, plus the gRPC and HTTP helpers tests talk to them with.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inference/grpc_service.grpc.pb.h"
#include "tests/support/process.h"

namespace infergate::testing {

// One infergate-sim process.
class Sim {
 public:
  // Starts `infergate-sim --name NAME --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0
  // ARGS...` and waits until it listens.
  explicit Sim(std::string name, std::vector<std::string> args = {});

  const std::string& name() const { return name_; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }
  // A sim-side gauge from its /metrics (e.g. infergate_sim_inflight_requests), or -1.
  double metric(const std::string& series);

 private:
  std::string name_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  int metrics_port_ = 0;
};

// A backend in a generated config, with extra keys of its own (e.g. "max_inflight: 3").
struct BackendYaml {
  std::string name;
  std::string address;            // empty: none (the keys say dns or srv)
  std::vector<std::string> keys;  // "key: value" lines
};

// One infergate process in front of the given backends.
class Gateway {
 public:
  struct WithKeys {};  // selects the constructor below (brace lists fit both)
  Gateway(WithKeys, const std::vector<BackendYaml>& backends, const std::string& extra_yaml,
          int workers = 2, bool wait_healthy = true);
  // `extra_yaml` is appended to the generated config (top-level keys). Unless told
  // otherwise, waits until every backend is healthy (the first probes have run).
  Gateway(const std::vector<std::pair<std::string, std::string>>& backends,
          const std::string& extra_yaml = "", int workers = 2, bool wait_healthy = true);

  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }
  const std::string& config_path() const { return config_path_; }
  // A value from the gateway's /metrics, e.g. "infergate_active_streams", or -1.
  double metric(const std::string& series);
  std::string metrics_text();

 private:
  std::string config_path_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  int admin_port_ = 0;
};

// Waits until the gateway reports `n` healthy backends (its probes have run).
bool wait_for_healthy(Gateway& gateway, int n,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Backends (name, address) for Gateway from sims.
std::vector<std::pair<std::string, std::string>> backends_of(
    const std::vector<std::unique_ptr<Sim>>& sims);

// A channel to 127.0.0.1:port with 2 GiB message limits. Each call makes a new TCP
// connection when `own_connection` is true.
std::shared_ptr<grpc::Channel> make_channel(int port, bool own_connection = false);
std::unique_ptr<inference::GRPCInferenceService::Stub> make_stub(int port,
                                                                 bool own_connection = false);

// An identity ModelInferRequest with one FP32 input of `bytes` bytes (a multiple of 4)
// whose content depends on `seed`.
inference::ModelInferRequest identity_request(size_t bytes, std::uint32_t seed = 1,
                                              const std::string& model = "identity");

// A 64-byte identity ModelInfer to 127.0.0.1:port (5 s deadline) carrying `token` as
// "authorization: Bearer TOKEN" (none if empty) and `job` as infergate-job (none if empty).
grpc::Status infer_with_token(int port, const std::string& token, const std::string& job = "");

// A self-signed P-256 certificate for 127.0.0.1 and localhost made with openssl:
// DIR/NAME.crt and DIR/NAME.key. False if openssl failed.
bool make_self_signed_certificate(const std::string& dir, const std::string& name);

// GET http://127.0.0.1:port/path (with `headers`, "Name: value" each); returns the body,
// status in *status (0 on failure).
std::string http_get(int port, const std::string& path, int* status = nullptr,
                     const std::vector<std::string>& headers = {});

// The value of the first sample in Prometheus text whose name-with-labels starts with
// `series` (e.g. 'infergate_requests_total{code="OK",method="ModelInfer"}'), or -1.
double metric_value(const std::string& text, const std::string& series);

// The `served_by` parameter infergate-sim stamps into responses.
std::string served_by(const inference::ModelInferResponse& response);

// Makes calls `call(0)`, `call(1)`, ... until one fails or `most` have succeeded (filling a
// table up to a cap). Returns how many succeeded; `refused` gets the failure, if any.
int count_until_refused(int most, const std::function<grpc::Status(int)>& call,
                        grpc::Status& refused);

}  // namespace infergate::testing
