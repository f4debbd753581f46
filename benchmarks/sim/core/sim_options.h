// Command-line options of `infergate-sim` and the model SPEC mini-language
// ("NAME:kind=accumulate,versions=1|2,latency=2ms"). Pure: no I/O, no exits, no exceptions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/host_port.h"

namespace infergate::sim {

// One served model, as given by --model.
struct ModelSpec {
  // identity and accumulate (see sim_models.h), and Triton's example models: simple
  // (INT32 INPUT0, INPUT1 -> OUTPUT0 = sum, OUTPUT1 = difference), simple_string (the same
  // on numbers written as BYTES strings) and simple_sequence (accumulate, with Triton's
  // tensor names INPUT and OUTPUT).
  enum class Kind { kIdentity, kAccumulate, kSimple, kSimpleString, kSimpleSequence };
  bool stateful() const { return kind == Kind::kAccumulate || kind == Kind::kSimpleSequence; }

  std::string name;
  Kind kind = Kind::kIdentity;
  std::vector<std::int64_t> versions{1};  // ascending, unique, each >= 1
  int instances = 1;
  std::chrono::nanoseconds latency{0};  // fixed time per execution
  std::chrono::nanoseconds per_mib{0};  // extra time per MiB of request tensor bytes
  int max_batch = 0;                    // reported max_batch_size only
  bool ready = true;
  std::chrono::nanoseconds seq_idle = std::chrono::seconds(1);  // accumulate only
};

struct SimOptions {
  config::HostPort listen{.host = "127.0.0.1", .port = 0};
  std::string name = "sim";
  std::vector<ModelSpec> models;  // never empty after a successful parse
  double error_rate = 0;
  int error_code = 13;  // a gRPC status code number (13 = INTERNAL)
  double refuse_rate = 0;
  double hang_rate = 0;
  bool hang_all = false;
  bool not_ready = false;
  std::uint64_t seed = 1;
  std::optional<config::HostPort> metrics_listen;
  // gRPC over TLS (Triton's --grpc-use-ssl): PEM certificate chain and key files.
  std::string tls_cert;
  std::string tls_key;
  bool help = false;
};

struct SimParse {
  SimOptions options;
  std::string error;  // non-empty: print it on stderr and exit 2

  bool ok() const { return error.empty(); }
};

// Parses the arguments after argv[0]. Accepts "--flag value" and "--flag=value".
SimParse parse_sim_args(const std::vector<std::string>& args);

// Parses one --model SPEC; on failure returns nullopt and sets *error.
std::optional<ModelSpec> parse_model_spec(std::string_view spec, std::string* error);

// "INTERNAL" -> 13, "unavailable" -> 14; nullopt for unknown names.
std::optional<int> grpc_code_from_name(std::string_view name);

// The text printed for --help.
std::string sim_usage();

}  // namespace infergate::sim
