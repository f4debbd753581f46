// Helpers for the infergate-sim integration tests: start a simulator process, talk to it
// with the generated gRPC stub, read its /metrics page, build requests.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inference/grpc_service.grpc.pb.h"
#include "tests/support/process.h"

namespace infergate::testing {

using Stub = inference::GRPCInferenceService::Stub;

// A running infergate-sim, killed when the object goes away.
class Sim {
 public:
  // Starts infergate-sim with `args` and waits for its "listening on" line (and its
  // "metrics on" line when `args` has --metrics-listen).
  explicit Sim(std::vector<std::string> args);

  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  Process& process() { return *process_; }
  Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
};

// A channel to 127.0.0.1:port that accepts messages up to INT_MAX bytes.
std::shared_ptr<grpc::Channel> make_channel(int port);

// A client context with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> context_with_deadline(std::chrono::milliseconds timeout);

// GET http://127.0.0.1:port{path}; returns the status code and body, nullopt on I/O error.
struct HttpResult {
  int status = 0;
  std::string body;
};
std::optional<HttpResult> http_get(int port, const std::string& path);

// The value of the sample `series` (name plus labels, exactly as exposed) in Prometheus
// text, nullopt if absent.
std::optional<double> metric(const std::string& text, const std::string& series);
// Reads one series from the simulator's /metrics, nullopt if unreachable or absent.
std::optional<double> scrape(int metrics_port, const std::string& series);

// A ModelInfer request for `model` with one raw input INPUT0 of `datatype` and `shape`
// holding `data`.
inference::ModelInferRequest raw_request(const std::string& model, const std::string& datatype,
                                         std::vector<std::int64_t> shape, std::string data);
// An FP32 request with `n` elements of recognisable values.
inference::ModelInferRequest fp32_request(const std::string& model, int n);
// An accumulate request: INPUT0 INT32 [1] = value, with the sequence parameters.
inference::ModelInferRequest sequence_request(const std::string& model, std::uint64_t sequence_id,
                                              std::int32_t value, bool start, bool end);

// The string parameter `name` of a response, "" if absent.
std::string string_param(const inference::ModelInferResponse& response, const std::string& name);

}  // namespace infergate::testing
