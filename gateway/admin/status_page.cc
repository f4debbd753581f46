#include "gateway/admin/status_page.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

namespace infergate::gateway {
namespace {

using routing::BackendInfo;
using routing::BackendStats;

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string number(double v, int decimals = 3) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string optional_number(const std::optional<double>& v, int decimals = 6) {
  return v ? number(*v, decimals) : "null";
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Models ready on the backend, "name (v1, v2)", sorted.
std::vector<std::string> model_list(const BackendInfo& b) {
  std::vector<std::string> out;
  for (const auto& [name, versions] : b.models) {
    std::string s = name;
    if (!versions.ready.empty()) {
      s += " (";
      for (size_t i = 0; i < versions.ready.size(); ++i) {
        s += (i ? ", v" : "v") + versions.ready[i];
      }
      s += ")";
    }
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string limit_value(std::uint64_t v) { return v == 0 ? "none" : std::to_string(v); }

std::string format_ms(const std::optional<double>& seconds) {
  return seconds ? number(*seconds * 1000, 1) + " ms" : "-";
}

}  // namespace

std::optional<double> histogram_quantile(
    double q, const std::array<std::uint64_t, BackendStats::kBuckets>& buckets) {
  std::uint64_t total = 0;
  for (std::uint64_t n : buckets) total += n;
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  std::uint64_t cumulative = 0;
  for (size_t b = 0; b < buckets.size(); ++b) {
    const std::uint64_t before = cumulative;
    cumulative += buckets[b];
    if (static_cast<double>(cumulative) < rank || buckets[b] == 0) continue;
    if (b == routing::kLatencyBounds.size()) return routing::kLatencyBounds.back();  // +Inf
    const double lower = b == 0 ? 0 : routing::kLatencyBounds[b - 1];
    const double upper = routing::kLatencyBounds[b];
    const double within = (rank - static_cast<double>(before)) / static_cast<double>(buckets[b]);
    return lower + (upper - lower) * std::clamp(within, 0.0, 1.0);
  }
  return routing::kLatencyBounds.back();
}

// ------------------------------------------------------------------ tracker

StatusTracker::StatusTracker(boost::asio::io_context& control, FleetSource fleet)
    : timer_(control), fleet_(std::move(fleet)) {}

void StatusTracker::start() {
  running_ = true;
  sample();
  arm();
}

void StatusTracker::stop() {
  running_ = false;
  timer_.cancel();
}

void StatusTracker::arm() {
  timer_.expires_after(kInterval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !running_) return;
    sample();
    arm();
  });
}

void StatusTracker::sample() {
  std::shared_ptr<const routing::Fleet> fleet = fleet_ ? fleet_() : nullptr;
  if (!fleet) return;
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, std::deque<Sample>> next;
  for (const BackendInfo& b : fleet->backends()) {
    const BackendStats& s = b.runtime->stats;
    Sample x{.at = now};
    for (size_t c = 0; c < s.answers.size(); ++c) {
      const std::uint64_t n = s.answers[c].load(std::memory_order_relaxed);
      x.answered += n;
      if (c != 0) x.errors += n;
    }
    x.errors += s.transport_failures.load(std::memory_order_relaxed);
    for (size_t i = 0; i < x.buckets.size(); ++i) {
      x.buckets[i] = s.latency_buckets[i].load(std::memory_order_relaxed);
    }
    std::deque<Sample>& kept = next[b.name];
    if (auto it = samples_.find(b.name); it != samples_.end()) kept = std::move(it->second);
    kept.push_back(x);
    while (kept.size() > kKeep) kept.pop_front();
  }
  samples_ = std::move(next);  // backends that left the fleet are forgotten
}

std::map<std::string, BackendRecent> StatusTracker::recent() const {
  std::map<std::string, BackendRecent> out;
  for (const auto& [name, kept] : samples_) {
    BackendRecent r;
    const Sample& last = kept.back();
    const Sample& first = kept.front();
    std::array<std::uint64_t, BackendStats::kBuckets> window{};
    for (size_t i = 0; i < window.size(); ++i) window[i] = last.buckets[i] - first.buckets[i];
    if (kept.size() >= 2) {
      r.window_seconds = std::chrono::duration<double>(last.at - first.at).count();
      if (r.window_seconds > 0) {
        r.requests_per_second =
            static_cast<double>(last.answered - first.answered) / r.window_seconds;
        r.errors_per_second = static_cast<double>(last.errors - first.errors) / r.window_seconds;
      }
    }
    r.p50_seconds = histogram_quantile(0.5, window);
    r.p99_seconds = histogram_quantile(0.99, window);
    out[name] = r;
  }
  return out;
}

// ------------------------------------------------------------------ JSON

std::string status_json(const StatusInputs& in) {
  std::ostringstream o;
  o << "{\n  \"infergate_version\": " << json_string(in.version)
    << ",\n  \"started_at\": " << json_string(iso_time(in.started_at))
    << ",\n  \"draining\": " << (in.draining ? "true" : "false")
    << ",\n  \"active_streams\": " << in.active_streams
    << ",\n  \"config\": {\"source\": " << json_string(in.config_source)
    << ", \"version\": " << json_string(in.config_version)
    << ", \"loaded_at\": " << json_string(iso_time(in.config_loaded_at))
    << ", \"policy\": " << json_string(in.policy) << "},\n  \"backends\": [";
  size_t healthy = 0;
  bool first = true;
  if (in.fleet) {
    for (const BackendInfo& b : in.fleet->backends()) {
      healthy += b.routable();
      const auto recent = in.recent.find(b.name);
      const BackendRecent r = recent == in.recent.end() ? BackendRecent{} : recent->second;
      o << (first ? "\n" : ",\n") << "    {\"name\": " << json_string(b.name)
        << ", \"address\": " << json_string(b.address)
        << ", \"state\": " << json_string(routing::backend_state_name(b.state))
        << ", \"weight\": " << number(b.weight)
        << ", \"effective_weight\": " << number(b.effective_weight())
        << ", \"max_inflight\": " << b.max_inflight
        << ", \"outstanding\": " << b.runtime->outstanding.load(std::memory_order_relaxed)
        << ", \"requests_per_second\": " << number(r.requests_per_second)
        << ", \"errors_per_second\": " << number(r.errors_per_second)
        << ", \"latency_p50_seconds\": " << optional_number(r.p50_seconds)
        << ", \"latency_p99_seconds\": " << optional_number(r.p99_seconds)
        << ", \"window_seconds\": " << number(r.window_seconds, 1) << ", \"models\": [";
      const std::vector<std::string> models = model_list(b);
      for (size_t i = 0; i < models.size(); ++i) o << (i ? ", " : "") << json_string(models[i]);
      o << "]";
      if (auto g = in.gpus.find(b.name); g != in.gpus.end()) {
        o << ", \"gpu\": {\"fresh\": " << (g->second.fresh ? "true" : "false")
          << ", \"utilization\": " << optional_number(g->second.utilization)
          << ", \"memory_used_bytes\": " << optional_number(g->second.memory_used_bytes, 0)
          << ", \"memory_total_bytes\": " << optional_number(g->second.memory_total_bytes, 0)
          << ", \"pending_requests\": " << optional_number(g->second.pending_requests, 0) << "}";
      } else {
        o << ", \"gpu\": null";
      }
      o << "}";
      first = false;
    }
  }
  const routing::AdmissionLimits& l = in.limits;
  const AdmissionGate::Stats& a = in.admission;
  o << (first ? "" : "\n  ") << "],\n  \"healthy_backends\": " << healthy
    << ",\n  \"admission\": {\"enabled\": " << (in.admission_enabled ? "true" : "false")
    << ", \"active_jobs\": " << a.active_jobs << ", \"inflight\": " << a.inflight
    << ", \"queued\": " << a.queued << ", \"bytes_in_flight\": " << a.bytes_in_flight
    << ", \"admitted_total\": " << a.admitted_total << ", \"rejected_total\": {";
  bool first_limit = true;
  for (size_t i = 1; i < a.rejected.size(); ++i) {
    o << (first_limit ? "" : ", ")
      << json_string(routing::limit_name(static_cast<routing::Limit>(i))) << ": " << a.rejected[i];
    first_limit = false;
  }
  o << "}, \"limits\": {\"max_jobs\": " << l.max_jobs << ", \"job_idle_timeout_seconds\": "
    << number(std::chrono::duration<double>(l.job_idle_timeout).count(), 1)
    << ", \"max_inflight\": " << l.max_inflight
    << ", \"per_job_max_inflight\": " << l.per_job_max_inflight
    << ", \"max_bytes_in_flight\": " << l.max_bytes_in_flight
    << ", \"link_bytes_per_second\": " << l.link_bytes_per_second
    << ", \"max_queue\": " << l.max_queue << ", \"queue_timeout_seconds\": "
    << number(std::chrono::duration<double>(l.queue_timeout).count(), 1) << "}}\n}\n";
  return o.str();
}

// ------------------------------------------------------------------ HTML

std::string status_html(const StatusInputs& in) {
  std::ostringstream o;
  size_t healthy = 0;
  const size_t total = in.fleet ? in.fleet->backends().size() : 0;
  if (in.fleet) {
    for (const BackendInfo& b : in.fleet->backends()) healthy += b.routable();
  }
  o << R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>infergate status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2430;background:#fafbfc}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
.meta{color:#5a6473}table{border-collapse:collapse;background:#fff;min-width:60%}
th,td{border:1px solid #d8dde5;padding:.3em .6em;text-align:right;white-space:nowrap}
th{background:#eef1f5}td.l,th.l{text-align:left}
.state{font-weight:600;border-radius:3px;padding:0 .4em}
.healthy{background:#d6f5dd;color:#135c25}.unhealthy,.ejected{background:#fde0e0;color:#8a1c1c}
.draining,.unknown{background:#fff1cc;color:#7a5800}.bar{display:inline-block;height:.7em;background:#4c8bf5;vertical-align:middle}
.summary span{display:inline-block;margin-right:2em}
</style></head><body>
)";
  o << "<h1>infergate</h1>\n<p class=\"meta\">version " << html_escape(in.version)
    << " &middot; started " << iso_time(in.started_at) << " &middot; config "
    << html_escape(in.config_source) << " (version " << html_escape(in.config_version)
    << ", loaded " << iso_time(in.config_loaded_at) << ") &middot; policy "
    << html_escape(in.policy) << (in.draining ? " &middot; <b>draining</b>" : "") << "</p>\n";
  o << "<p class=\"summary\"><span><b>" << healthy << "</b> of " << total
    << " backends healthy</span><span><b>" << in.active_streams
    << "</b> RPCs in flight</span></p>\n";
  o << "<h2>Backends</h2>\n<table id=\"backends\"><tr><th class=\"l\">backend</th><th "
       "class=\"l\">address</th><th class=\"l\">state</th><th>weight</th><th>outstanding</"
       "th><th>req/s</th><th>errors/s</th><th>p50</th><th>p99</th><th>GPU</th><th "
       "class=\"l\">models</th></tr>\n";
  if (in.fleet) {
    for (const BackendInfo& b : in.fleet->backends()) {
      const auto recent = in.recent.find(b.name);
      const BackendRecent r = recent == in.recent.end() ? BackendRecent{} : recent->second;
      const std::string state(routing::backend_state_name(b.state));
      std::string gpu = "-";
      if (auto g = in.gpus.find(b.name); g != in.gpus.end()) {
        if (g->second.fresh && g->second.utilization) {
          const double u = std::clamp(*g->second.utilization, 0.0, 1.0);
          gpu = number(u * 100, 0) + "% <span class=\"bar\" style=\"width:" + number(u * 60, 0) +
                "px\"></span>";
        } else {
          gpu = "stale";
        }
      }
      std::string models;
      for (const std::string& m : model_list(b)) models += (models.empty() ? "" : ", ") + m;
      o << "<tr class=\"backend\" data-backend=\"" << html_escape(b.name) << "\"><td class=\"l\">"
        << html_escape(b.name) << "</td><td class=\"l\">" << html_escape(b.address)
        << "</td><td class=\"l\"><span class=\"state " << state << "\">" << state
        << "</span></td><td>" << number(b.effective_weight(), 2)
        << (b.effective_weight() < b.weight ? " (ramping)" : "") << "</td><td>"
        << b.runtime->outstanding.load(std::memory_order_relaxed)
        << (b.max_inflight ? " / " + std::to_string(b.max_inflight) : "") << "</td><td>"
        << number(r.requests_per_second, 1) << "</td><td>" << number(r.errors_per_second, 2)
        << "</td><td>" << format_ms(r.p50_seconds) << "</td><td>" << format_ms(r.p99_seconds)
        << "</td><td>" << gpu << "</td><td class=\"l\">"
        << (models.empty() ? "-" : html_escape(models)) << "</td></tr>\n";
    }
  }
  o << "</table>\n";
  const routing::AdmissionLimits& l = in.limits;
  const AdmissionGate::Stats& a = in.admission;
  std::uint64_t rejected = 0;
  for (std::uint64_t n : a.rejected) rejected += n;
  o << "<h2>Admission</h2>\n";
  if (!in.admission_enabled) {
    o << "<p>No limits are set: every request goes straight to routing.</p>\n";
  } else {
    o << "<table id=\"admission\"><tr><th class=\"l\">active jobs</th><th>in flight</th><th>"
         "queued</th><th>bytes in flight</th><th>admitted</th><th>refused</th></tr>\n<tr><td "
         "class=\"l\">"
      << a.active_jobs << "</td><td>" << a.inflight << "</td><td>" << a.queued << "</td><td>"
      << a.bytes_in_flight << "</td><td>" << a.admitted_total << "</td><td>" << rejected
      << "</td></tr></table>\n<p class=\"meta\">limits: max_jobs " << limit_value(l.max_jobs)
      << ", max_inflight " << limit_value(l.max_inflight) << ", per_job_max_inflight "
      << limit_value(l.per_job_max_inflight) << ", max_bytes_in_flight "
      << limit_value(l.max_bytes_in_flight) << ", link_bandwidth "
      << (l.link_bytes_per_second
              ? number(static_cast<double>(l.link_bytes_per_second) / 1e6, 1) + " MB/s"
              : "none")
      << ", max_queue " << l.max_queue << ", queue_timeout "
      << number(std::chrono::duration<double>(l.queue_timeout).count(), 1) << " s</p>\n";
  }
  o << "<p class=\"meta\">Rates and latencies cover the last ~10 s. Machine-readable: <a "
       "href=\"/status.json\">/status.json</a>, <a href=\"/metrics\">/metrics</a>.</p>\n"
       "</body></html>\n";
  return o.str();
}

}  // namespace infergate::gateway
