#include "benchmarks/bench/core/report.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace infergate::bench {
namespace {

std::string level_key(LoadMode mode) {
  return mode == LoadMode::kConcurrency ? "concurrency" : "request_rate";
}

std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::isfinite(v) ? v : 0.0);
  return buf;
}

double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string errors_text(const LevelResult& r, char pair_sep, char list_sep) {
  std::string out;
  for (const auto& [code, n] : r.errors) {
    if (!out.empty()) out += list_sep;
    out += code + pair_sep + std::to_string(n);
  }
  return out;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string row(const LevelResult& r, LoadMode mode) {
  char buf[512];
  double mb = 1e6;
  std::string stable = r.stable ? "yes" : "no (" + std::to_string(r.windows) + " windows)";
  std::snprintf(
      buf, sizeof buf,
      "%12s %10.1f %10.1f %9.0f %9.0f %9.0f %9.0f %9.0f %9llu %7llu %9.2f %9.2f %8.1f  %s\n",
      mode == LoadMode::kConcurrency ? fixed(r.level, 0).c_str() : fixed(r.level, 1).c_str(),
      r.throughput, r.send_rate, r.latency.avg_us, r.latency.p50_us, r.latency.p90_us,
      r.latency.p99_us, r.latency.max_us, static_cast<unsigned long long>(r.requests),
      static_cast<unsigned long long>(r.error_count), r.request_bytes_per_second / mb,
      r.response_bytes_per_second / mb, r.cpu_us_per_request, stable.c_str());
  return buf;
}

std::string config_json(const BenchOptions& o, const RequestInfo& request) {
  std::string targets;
  for (const config::HostPort& t : o.targets) {
    targets += (targets.empty() ? "" : ", ") + json_quote(t.to_string());
  }
  std::string levels;
  for (double l : o.levels) levels += (levels.empty() ? "" : ", ") + num(l);
  std::string headers;
  for (const Header& h : o.headers) {
    headers += (headers.empty() ? "" : ", ") + json_quote(h.key) + ": " + json_quote(h.value);
  }
  return "{\"targets\": [" + targets + "], \"model\": " + json_quote(o.model) +
         ", \"model_version\": " + json_quote(o.model_version) +
         ", \"preset\": " + json_quote(preset_name(o.preset)) +
         ", \"input_shape\": " + shape_text(request.shape) +
         ", \"request_bytes\": " + std::to_string(request.payload_bytes) +
         ", \"mode\": " + json_quote(level_key(o.mode)) + ", \"levels\": [" + levels + "]" +
         ", \"request_distribution\": " + json_quote(distribution_name(o.distribution)) +
         ", \"measurement_interval_ms\": " + num(ms(o.measurement_interval)) +
         ", \"stability_percentage\": " + num(o.stability_percentage) +
         ", \"max_trials\": " + std::to_string(o.max_trials) +
         ", \"warmup_ms\": " + num(ms(o.warmup)) +
         ", \"connections\": " + std::to_string(o.connections) +
         ", \"streaming\": " + (o.streaming ? "true" : "false") +
         ", \"compression\": " + json_quote(compression_name(o.compression)) +
         ", \"timeout_ms\": " + num(ms(o.timeout)) + ", \"headers\": {" + headers + "}" +
         ", \"validate\": " + (o.validate ? "true" : "false") + "}";
}

std::string result_json(const LevelResult& r, LoadMode mode) {
  std::string errors;
  for (const auto& [code, n] : r.errors) {
    errors += (errors.empty() ? "" : ", ") + json_quote(code) + ": " + std::to_string(n);
  }
  return "{\"" + level_key(mode) + "\": " + num(r.level) +
         ", \"throughput\": " + num(r.throughput) + ", \"send_rate\": " + num(r.send_rate) +
         ", \"latency_avg_us\": " + num(r.latency.avg_us) +
         ", \"latency_p50_us\": " + num(r.latency.p50_us) +
         ", \"latency_p90_us\": " + num(r.latency.p90_us) +
         ", \"latency_p99_us\": " + num(r.latency.p99_us) +
         ", \"latency_max_us\": " + num(r.latency.max_us) +
         ", \"requests\": " + std::to_string(r.requests) +
         ", \"error_count\": " + std::to_string(r.error_count) + ", \"errors\": {" + errors +
         "}, \"first_error\": " + json_quote(r.first_error) +
         ", \"request_bytes_per_second\": " + num(r.request_bytes_per_second) +
         ", \"response_bytes_per_second\": " + num(r.response_bytes_per_second) +
         ", \"stable\": " + (r.stable ? "true" : "false") +
         ", \"windows\": " + std::to_string(r.windows) +
         ", \"max_outstanding\": " + std::to_string(r.max_outstanding) +
         ", \"cpu_us_per_request\": " + num(r.cpu_us_per_request) +
         ", \"duration_s\": " + num(r.duration_s) + "}";
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string format_table(const BenchOptions& o, const RequestInfo& request,
                         std::span<const LevelResult> results) {
  std::string out = "infergate-bench: model " + o.model + ", preset " +
                    std::string(preset_name(o.preset)) + " " + shape_text(request.shape) + " (" +
                    std::to_string(request.payload_bytes) + " B), " +
                    (o.streaming ? "streaming" : "unary") + ", " +
                    (o.mode == LoadMode::kConcurrency ? "closed loop" : "open loop") + ", " +
                    std::to_string(o.targets.size()) + " target(s) x " +
                    std::to_string(o.connections) + " connection(s)\n";
  char head[512];
  std::snprintf(head, sizeof head, "%12s %10s %10s %9s %9s %9s %9s %9s %9s %7s %9s %9s %8s  %s\n",
                o.mode == LoadMode::kConcurrency ? "concurrency" : "rate", "infer/s", "sent/s",
                "avg_us", "p50_us", "p90_us", "p99_us", "max_us", "requests", "errors", "req_MB/s",
                "resp_MB/s", "cpu_us/r", "stable");
  out += head;
  for (const LevelResult& r : results) out += row(r, o.mode);
  for (const LevelResult& r : results) {
    if (r.error_count == 0) continue;
    out += "errors at " + level_key(o.mode) + " " + num(r.level) + ": " + errors_text(r, '=', ' ') +
           " (first: " + r.first_error + ")\n";
  }
  return out;
}

std::string format_csv(const BenchOptions& o, std::span<const LevelResult> results) {
  std::string out = level_key(o.mode) +
                    ",throughput,send_rate,latency_avg_us,latency_p50_us,latency_p90_us,"
                    "latency_p99_us,latency_max_us,requests,error_count,errors,"
                    "request_bytes_per_second,response_bytes_per_second,stable,windows,"
                    "max_outstanding,cpu_us_per_request,duration_s\n";
  for (const LevelResult& r : results) {
    out += num(r.level) + "," + num(r.throughput) + "," + num(r.send_rate) + "," +
           num(r.latency.avg_us) + "," + num(r.latency.p50_us) + "," + num(r.latency.p90_us) + "," +
           num(r.latency.p99_us) + "," + num(r.latency.max_us) + "," + std::to_string(r.requests) +
           "," + std::to_string(r.error_count) + "," + errors_text(r, ':', ';') + "," +
           num(r.request_bytes_per_second) + "," + num(r.response_bytes_per_second) + "," +
           (r.stable ? "true" : "false") + "," + std::to_string(r.windows) + "," +
           std::to_string(r.max_outstanding) + "," + num(r.cpu_us_per_request) + "," +
           num(r.duration_s) + "\n";
  }
  return out;
}

std::string format_json(const BenchOptions& o, const RequestInfo& request,
                        std::span<const LevelResult> results) {
  std::string out = "{\"config\": " + config_json(o, request) + ",\n \"results\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    out += (i ? ",\n  " : "\n  ") + result_json(results[i], o.mode);
  }
  return out + "\n ]}\n";
}

std::string format_progress(const WindowReport& w, LoadMode mode) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %s: window %d/%d: %.1f infer/s, p99 %.0f us",
                mode == LoadMode::kConcurrency ? "concurrency" : "request rate",
                num(w.level).c_str(), w.window, w.max_trials, w.metrics.throughput,
                w.metrics.p99_us);
  std::string out = buf;
  if (w.errors > 0) out += ", " + std::to_string(w.errors) + " errors";
  return out;
}

}  // namespace infergate::bench
