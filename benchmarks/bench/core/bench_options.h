// infergate-bench's command line: the options struct and its parser. Pure: no I/O, no
// exits; the caller prints the error with the usage and exits 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "benchmarks/bench/core/payload.h"
#include "benchmarks/bench/core/rate_schedule.h"
#include "config/host_port.h"

namespace infergate::bench {

enum class LoadMode { kConcurrency, kRequestRate };
enum class Compression { kNone, kGzip, kDeflate };
enum class Progress { kAuto, kAlways, kNever };

// Request metadata from -H KEY=VALUE; the key is lower-cased and checked.
struct Header {
  std::string key;
  std::string value;
};

struct BenchOptions {
  std::vector<config::HostPort> targets;
  std::string model = "identity";
  std::string model_version;
  Preset preset = Preset::k1kb;
  std::uint64_t random_bytes = 1 << 20;
  LoadMode mode = LoadMode::kConcurrency;
  std::vector<double> levels{1};  // concurrency values, or requests per second
  Distribution distribution = Distribution::kConstant;
  std::chrono::nanoseconds measurement_interval = std::chrono::seconds(2);
  double stability_percentage = 10;
  int max_trials = 10;
  std::chrono::nanoseconds warmup{0};
  int connections = 1;
  bool streaming = false;
  Compression compression = Compression::kNone;
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
  std::vector<Header> headers;
  std::string tls_ca;    // PEM file: connect over TLS ("": plaintext)
  std::string tls_name;  // the certificate's name, when not the target's host
  bool validate = false;
  std::string csv_path;
  std::string json_path;
  Progress progress = Progress::kAuto;
};

struct BenchParse {
  BenchOptions options;
  bool help = false;
  std::string error;  // non-empty: print it with the usage and exit 2

  bool ok() const { return error.empty(); }
};

// Parses the arguments after the program name. "--flag value" and "--flag=value" both
// work; -u, -m and -H take their value as the next argument.
BenchParse parse_args(const std::vector<std::string>& args);

// The text printed for --help.
std::string usage();

std::string_view compression_name(Compression c);

}  // namespace infergate::bench
