#include "benchmarks/bench/core/bench_options.h"

#include <array>
#include <charconv>
#include <cmath>

#include "benchmarks/bench/core/level_range.h"
#include "config/units.h"

namespace infergate::bench {
namespace {

constexpr int kMaxConcurrency = 10000;
constexpr std::uint64_t kMaxRandomBytes = 1ull << 30;

struct State {
  BenchOptions o;
  bool saw_concurrency = false;
  bool saw_rate = false;
};

// Applies a flag's value; returns an error message or "".
using Apply = std::string (*)(State&, std::string_view);

struct Flag {
  std::string_view name;
  std::string_view alias;
  bool takes_value;
  Apply apply;
};

std::string parse_int(std::string_view v, int lo, int hi, int& out) {
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size())
    return "'" + std::string(v) + "' is not an integer";
  if (out < lo || out > hi) {
    return "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
  }
  return "";
}

std::string parse_percentage(std::string_view v, double& out) {
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size())
    return "'" + std::string(v) + "' is not a number";
  if (!(out > 0 && out <= 1000)) return "must be above 0 and at most 1000";
  return "";
}

std::string parse_duration_into(std::string_view v, bool allow_zero,
                                std::chrono::nanoseconds& out) {
  config::Parsed<std::chrono::nanoseconds> d = config::parse_duration(v);
  if (!d.ok()) return d.error;
  if (!allow_zero && d.value->count() == 0) return "must be greater than 0";
  out = *d.value;
  return "";
}

std::string apply_urls(State& s, std::string_view v) {
  for (size_t start = 0; start <= v.size();) {
    size_t comma = std::min(v.find(',', start), v.size());
    config::Parsed<config::HostPort> hp =
        config::parse_host_port(v.substr(start, comma - start), false);
    if (!hp.ok()) return hp.error;
    s.o.targets.push_back(*hp.value);
    start = comma + 1;
  }
  return "";
}

std::string apply_bytes(State& s, std::string_view v) {
  config::Parsed<std::uint64_t> b = config::parse_bytes(v);
  if (!b.ok()) return b.error;
  if (*b.value < 4 || *b.value % 4 != 0) return "must be a positive multiple of 4 (FP32 elements)";
  if (*b.value > kMaxRandomBytes) return "must be at most 1GiB";
  s.o.random_bytes = *b.value;
  return "";
}

std::string apply_levels(State& s, std::string_view v, bool concurrency) {
  config::Parsed<std::vector<double>> levels = parse_levels(v, concurrency);
  if (!levels.ok()) return levels.error;
  if (concurrency && levels.value->back() > kMaxConcurrency) {
    return "concurrency must be at most " + std::to_string(kMaxConcurrency);
  }
  s.o.levels = *levels.value;
  s.o.mode = concurrency ? LoadMode::kConcurrency : LoadMode::kRequestRate;
  (concurrency ? s.saw_concurrency : s.saw_rate) = true;
  return "";
}

bool legal_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

// gRPC refuses (or crashes on) metadata that HTTP/2 forbids, so it is checked here.
std::string apply_header(State& s, std::string_view v) {
  size_t eq = v.find('=');
  if (eq == std::string_view::npos || eq == 0) return "'" + std::string(v) + "' is not KEY=VALUE";
  Header h{.key = std::string(v.substr(0, eq)), .value = std::string(v.substr(eq + 1))};
  for (char& c : h.key) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  for (char c : h.key) {
    if (!legal_key_char(c)) return "key '" + h.key + "' may hold only a-z 0-9 - _ .";
  }
  if (h.key.starts_with("grpc-") || h.key == "te" || h.key == "content-type" || h.key == "host" ||
      h.key == "connection") {
    return "key '" + h.key + "' is reserved by gRPC/HTTP2";
  }
  bool binary = h.key.ends_with("-bin");
  for (char c : h.value) {
    if (!binary && (c < 0x20 || c > 0x7e))
      return "value of '" + h.key + "' must be printable ASCII";
  }
  s.o.headers.push_back(std::move(h));
  return "";
}

template <typename Enum, size_t N>
std::string pick(std::string_view v, const std::array<std::pair<std::string_view, Enum>, N>& names,
                 Enum& out) {
  std::string list;
  for (const auto& [name, value] : names) {
    if (name == v) {
      out = value;
      return "";
    }
    list += (list.empty() ? "" : ", ") + std::string(name);
  }
  return "'" + std::string(v) + "' is not one of " + list;
}

constexpr std::array kCompressions{std::pair{std::string_view("none"), Compression::kNone},
                                   std::pair{std::string_view("gzip"), Compression::kGzip},
                                   std::pair{std::string_view("deflate"), Compression::kDeflate}};
constexpr std::array kProgress{std::pair{std::string_view("auto"), Progress::kAuto},
                               std::pair{std::string_view("always"), Progress::kAlways},
                               std::pair{std::string_view("never"), Progress::kNever}};
constexpr std::array kPresets{std::pair{std::string_view("1kb"), Preset::k1kb},
                              std::pair{std::string_view("deepmet"), Preset::kDeepmet},
                              std::pair{std::string_view("protodune"), Preset::kProtodune},
                              std::pair{std::string_view("random"), Preset::kRandom}};
constexpr std::array kDistributions{
    std::pair{std::string_view("constant"), Distribution::kConstant},
    std::pair{std::string_view("poisson"), Distribution::kPoisson}};

std::string non_empty(std::string_view v, std::string& out) {
  if (v.empty()) return "must not be empty";
  out = std::string(v);
  return "";
}

const std::array kFlags{
    Flag{"--url", "-u", true, apply_urls},
    Flag{"--model", "-m", true,
         [](State& s, std::string_view v) { return non_empty(v, s.o.model); }},
    Flag{"--model-version", "", true,
         [](State& s, std::string_view v) {
           s.o.model_version = std::string(v);
           return std::string();
         }},
    Flag{"--preset", "", true,
         [](State& s, std::string_view v) { return pick(v, kPresets, s.o.preset); }},
    Flag{"--bytes", "", true, apply_bytes},
    Flag{"--concurrency-range", "", true,
         [](State& s, std::string_view v) { return apply_levels(s, v, true); }},
    Flag{"--request-rate-range", "", true,
         [](State& s, std::string_view v) { return apply_levels(s, v, false); }},
    Flag{"--request-distribution", "", true,
         [](State& s, std::string_view v) { return pick(v, kDistributions, s.o.distribution); }},
    Flag{"--measurement-interval", "", true,
         [](State& s, std::string_view v) {
           return parse_duration_into(v, false, s.o.measurement_interval);
         }},
    Flag{
        "--stability-percentage", "", true,
        [](State& s, std::string_view v) { return parse_percentage(v, s.o.stability_percentage); }},
    Flag{"--max-trials", "", true,
         [](State& s, std::string_view v) { return parse_int(v, 1, 10000, s.o.max_trials); }},
    Flag{"--warmup", "", true,
         [](State& s, std::string_view v) { return parse_duration_into(v, true, s.o.warmup); }},
    Flag{"--connections", "", true,
         [](State& s, std::string_view v) { return parse_int(v, 1, 1000, s.o.connections); }},
    Flag{"--streaming", "", false,
         [](State& s, std::string_view) {
           s.o.streaming = true;
           return std::string();
         }},
    Flag{"--compression", "", true,
         [](State& s, std::string_view v) { return pick(v, kCompressions, s.o.compression); }},
    Flag{"--timeout", "", true,
         [](State& s, std::string_view v) { return parse_duration_into(v, false, s.o.timeout); }},
    Flag{"--header", "-H", true, apply_header},
    Flag{"--validate", "", false,
         [](State& s, std::string_view) {
           s.o.validate = true;
           return std::string();
         }},
    Flag{"--tls-ca", "", true,
         [](State& s, std::string_view v) { return non_empty(v, s.o.tls_ca); }},
    Flag{"--tls-name", "", true,
         [](State& s, std::string_view v) { return non_empty(v, s.o.tls_name); }},
    Flag{"--csv", "", true,
         [](State& s, std::string_view v) { return non_empty(v, s.o.csv_path); }},
    Flag{"--json", "", true,
         [](State& s, std::string_view v) { return non_empty(v, s.o.json_path); }},
    Flag{"--progress", "", true,
         [](State& s, std::string_view v) { return pick(v, kProgress, s.o.progress); }},
};

const Flag* find_flag(std::string_view name) {
  for (const Flag& f : kFlags) {
    if (f.name == name || (!f.alias.empty() && f.alias == name)) return &f;
  }
  return nullptr;
}

// Checks that need every flag; returns an error message or "".
std::string cross_check(const State& s) {
  if (s.o.targets.empty()) return "-u/--url is required";
  if (s.saw_concurrency && s.saw_rate) {
    return "--concurrency-range and --request-rate-range exclude each other";
  }
  if (s.o.streaming && s.o.mode == LoadMode::kRequestRate) {
    return "--streaming works with --concurrency-range only";
  }
  return "";
}

}  // namespace

BenchParse parse_args(const std::vector<std::string>& args) {
  BenchParse out;
  State state;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      return out;
    }
    std::string_view name = a;
    std::optional<std::string_view> inline_value;
    if (size_t eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    const Flag* flag = a.starts_with("-") ? find_flag(name) : nullptr;
    if (flag == nullptr) {
      out.error = a.starts_with("-") ? "unknown option '" + std::string(name) + "'"
                                     : "unexpected argument '" + std::string(a) + "'";
      return out;
    }
    std::string_view value;
    if (flag->takes_value) {
      if (!inline_value && i + 1 >= args.size()) {
        out.error = std::string(name) + " needs a value";
        return out;
      }
      value = inline_value ? *inline_value : std::string_view(args[++i]);
    } else if (inline_value) {
      out.error = std::string(name) + " takes no value";
      return out;
    }
    if (std::string e = flag->apply(state, value); !e.empty()) {
      out.error = std::string(flag->name) + ": " + e;
      return out;
    }
  }
  out.error = cross_check(state);
  out.options = std::move(state.o);
  return out;
}

std::string_view compression_name(Compression c) {
  for (const auto& [name, value] : kCompressions) {
    if (value == c) return name;
  }
  return "none";
}

}  // namespace infergate::bench
