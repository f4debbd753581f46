#include "benchmarks/sim/core/sim_options.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "config/units.h"

namespace infergate::sim {
namespace {

constexpr std::array<std::string_view, 17> kCodeNames{
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

template <typename T>
std::optional<T> parse_int(std::string_view text, T min, T max) {
  T value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

// A duration via config::parse_duration; a bare "0" is accepted as zero.
std::optional<std::chrono::nanoseconds> parse_dur(std::string_view text, std::string* error) {
  if (text == "0") return std::chrono::nanoseconds(0);
  config::Parsed<std::chrono::nanoseconds> parsed = config::parse_duration(text);
  if (!parsed.ok()) *error = parsed.error;
  return parsed.value;
}

std::optional<std::vector<std::int64_t>> parse_versions(std::string_view text) {
  std::vector<std::int64_t> out;
  while (true) {
    size_t bar = text.find('|');
    std::optional<std::int64_t> v =
        parse_int<std::int64_t>(text.substr(0, bar), 1, std::numeric_limits<std::int64_t>::max());
    if (!v) return std::nullopt;
    out.push_back(*v);
    if (bar == std::string_view::npos) break;
    text.remove_prefix(bar + 1);
  }
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end()) return std::nullopt;
  return out;
}

// Applies one key=value of a SPEC. Returns an error message, empty when fine.
std::string apply_spec_key(ModelSpec& spec, std::string_view key, std::string_view value,
                           bool* seq_idle_given) {
  const std::string bad = "bad value '" + std::string(value) + "' for " + std::string(key);
  std::string error;
  if (key == "kind") {
    if (value == "identity") {
      spec.kind = ModelSpec::Kind::kIdentity;
    } else if (value == "accumulate") {
      spec.kind = ModelSpec::Kind::kAccumulate;
    } else if (value == "simple") {
      spec.kind = ModelSpec::Kind::kSimple;
    } else if (value == "simple_string") {
      spec.kind = ModelSpec::Kind::kSimpleString;
    } else if (value == "simple_sequence") {
      spec.kind = ModelSpec::Kind::kSimpleSequence;
    } else {
      return bad + " (use identity, accumulate, simple, simple_string or simple_sequence)";
    }
  } else if (key == "versions") {
    std::optional<std::vector<std::int64_t>> v = parse_versions(value);
    if (!v) return bad + " (positive integers separated by '|', no repeats)";
    spec.versions = std::move(*v);
  } else if (key == "instances") {
    std::optional<int> v = parse_int<int>(value, 1, 1024);
    if (!v) return bad + " (an integer from 1 to 1024)";
    spec.instances = *v;
  } else if (key == "latency" || key == "per_mb" || key == "seq_idle") {
    std::optional<std::chrono::nanoseconds> v = parse_dur(value, &error);
    if (!v) return bad + ": " + error;
    if (key == "latency") spec.latency = *v;
    if (key == "per_mb") spec.per_mib = *v;
    if (key == "seq_idle") {
      if (v->count() == 0) return bad + " (must be above zero)";
      spec.seq_idle = *v;
      *seq_idle_given = true;
    }
  } else if (key == "max_batch") {
    std::optional<int> v = parse_int<int>(value, 0, std::numeric_limits<int>::max());
    if (!v) return bad + " (a non-negative integer)";
    spec.max_batch = *v;
  } else if (key == "ready") {
    if (value != "true" && value != "false") return bad + " (use true or false)";
    spec.ready = value == "true";
  } else {
    return "unknown key '" + std::string(key) +
           "' (use kind, versions, instances, latency, per_mb, max_batch, ready, seq_idle)";
  }
  return "";
}

std::optional<double> parse_rate(std::string_view text) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !(v >= 0.0 && v <= 1.0)) {
    return std::nullopt;
  }
  return v;
}

// Applies one option that takes a value. Returns an error message, empty when fine.
std::string apply_flag(SimOptions& o, std::string_view flag, const std::string& value) {
  std::string error;
  if (flag == "--listen" || flag == "--metrics-listen") {
    config::Parsed<config::HostPort> hp = config::parse_host_port(value, true);
    if (!hp.ok()) return std::string(flag) + ": " + hp.error;
    (flag == "--listen" ? o.listen : o.metrics_listen.emplace()) = *hp.value;
  } else if (flag == "--name") {
    if (!valid_model_name(value)) return "--name: '" + value + "' must be [A-Za-z0-9_.-]+";
    o.name = value;
  } else if (flag == "--model") {
    std::optional<ModelSpec> spec = parse_model_spec(value, &error);
    if (!spec) return "--model '" + value + "': " + error;
    o.models.push_back(std::move(*spec));
  } else if (flag == "--error-rate" || flag == "--refuse-rate" || flag == "--hang-rate") {
    std::optional<double> rate = parse_rate(value);
    if (!rate) return std::string(flag) + ": '" + value + "' must be a number from 0 to 1";
    (flag == "--error-rate"    ? o.error_rate
     : flag == "--refuse-rate" ? o.refuse_rate
                               : o.hang_rate) = *rate;
  } else if (flag == "--error-code") {
    std::optional<int> code = grpc_code_from_name(value);
    if (!code || *code == 0) return "--error-code: '" + value + "' is not a gRPC error code name";
    o.error_code = *code;
  } else if (flag == "--tls-cert" || flag == "--tls-key") {
    if (value.empty()) return std::string(flag) + ": a PEM file is required";
    (flag == "--tls-cert" ? o.tls_cert : o.tls_key) = value;
  } else if (flag == "--seed") {
    std::optional<std::uint64_t> seed =
        parse_int<std::uint64_t>(value, 0, std::numeric_limits<std::uint64_t>::max());
    if (!seed) return "--seed: '" + value + "' must be a non-negative integer";
    o.seed = *seed;
  } else {
    return "unknown option '" + std::string(flag) + "'";
  }
  return "";
}

bool takes_value(std::string_view flag) {
  static constexpr std::array<std::string_view, 11> kFlags{
      "--listen",    "--name", "--model",          "--error-rate", "--error-code", "--refuse-rate",
      "--hang-rate", "--seed", "--metrics-listen", "--tls-cert",   "--tls-key"};
  return std::find(kFlags.begin(), kFlags.end(), flag) != kFlags.end();
}

// Cross-option checks after every flag is read.
std::string finish(SimOptions& o) {
  if (o.error_rate + o.refuse_rate + o.hang_rate > 1.0 + 1e-9) {
    return "--error-rate, --refuse-rate and --hang-rate must add up to at most 1";
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) return "--tls-cert and --tls-key go together";
  if (o.models.empty()) o.models.push_back(ModelSpec{.name = "identity"});
  for (size_t i = 0; i < o.models.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (o.models[i].name == o.models[j].name) {
        return "--model: model '" + o.models[i].name + "' is given twice";
      }
    }
  }
  return "";
}

}  // namespace

std::optional<int> grpc_code_from_name(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (kCodeNames[i] == upper) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::optional<ModelSpec> parse_model_spec(std::string_view text, std::string* error) {
  ModelSpec spec;
  size_t colon = text.find(':');
  spec.name = std::string(text.substr(0, colon));
  if (!valid_model_name(spec.name)) {
    *error = "model name '" + spec.name + "' must be [A-Za-z0-9_.-]+";
    return std::nullopt;
  }
  bool seq_idle_given = false;
  std::string_view rest = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  while (colon != std::string_view::npos) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      *error = "'" + std::string(item) + "' is not key=value";
      return std::nullopt;
    }
    *error = apply_spec_key(spec, item.substr(0, eq), item.substr(eq + 1), &seq_idle_given);
    if (!error->empty()) return std::nullopt;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (seq_idle_given && !spec.stateful()) {
    *error = "seq_idle applies only to kind=accumulate or simple_sequence";
    return std::nullopt;
  }
  return spec;
}

SimParse parse_sim_args(const std::vector<std::string>& args) {
  SimParse out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--help" || flag == "-h") {
      out.options.help = true;
      return out;
    }
    if (flag == "--hang" || flag == "--not-ready") {
      if (value) {
        out.error = flag + " takes no value";
        return out;
      }
      (flag == "--hang" ? out.options.hang_all : out.options.not_ready) = true;
      continue;
    }
    if (!takes_value(flag)) {
      out.error = "unknown option '" + flag + "'";
      return out;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        out.error = flag + " needs a value";
        return out;
      }
      value = args[++i];
    }
    out.error = apply_flag(out.options, flag, *value);
    if (!out.ok()) return out;
  }
  out.error = finish(out.options);
  return out;
}

std::string sim_usage() {
  return R"(usage: infergate-sim [options]

A simulated NVIDIA Triton server speaking the KServe v2 gRPC protocol.

options:
  --listen HOST:PORT          gRPC address (default 127.0.0.1:0; port 0 = the OS picks)
  --name NAME                 this server's name (default "sim"), sent back as served_by
  --model SPEC                a model to serve; repeatable. SPEC is NAME or
                              NAME:key=value[,key=value...]
       kind=identity|accumulate|simple|simple_string|simple_sequence
                                  (default identity; the simple* ones are Triton's
                                  example models)
       versions=1|2|3             versions served, '|'-separated (default 1)
       instances=N                model instances executing in parallel (default 1)
       latency=DURATION           fixed time per execution, e.g. 2ms (default 0)
       per_mb=DURATION            extra time per MiB of request tensor bytes (default 0)
       max_batch=N                reported max_batch_size (default 0)
       ready=true|false           initial state (default true)
       seq_idle=DURATION          accumulate, simple_sequence: sequence idle timeout (1s)
     With no --model, one model "identity" (kind identity) is served.
  --error-rate P              fraction of inference requests failed (after their latency)
                              with --error-code
  --error-code NAME           gRPC code name, e.g. INTERNAL (default), UNAVAILABLE
  --refuse-rate P             fraction answered UNAVAILABLE at once, before queueing
  --hang-rate P               fraction of inference requests never answered (until the
                              client cancels or its deadline passes)
  --hang                      every RPC (health ones too) is accepted and never answered
  --not-ready                 ServerReady false and models not ready
  --seed N                    seed for failure injection (default 1), reproducible
  --metrics-listen HOST:PORT  also serve Triton-style Prometheus metrics at /metrics
  --tls-cert FILE, --tls-key FILE
                              serve gRPC over TLS with this PEM certificate chain and
                              key (as Triton's --grpc-use-ssl)
  --help                      print this text and exit

identity echoes input INPUTx as output OUTPUTx (inputx -> outputx; any other name X ->
OUTPUT_X), byte for byte. accumulate keeps a running INT32 sum of INPUT0 per sequence_id.
)";
}

}  // namespace infergate::sim
