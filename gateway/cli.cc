#include "gateway/cli.h"

#include <charconv>

#include "config/units.h"

namespace infergate::gateway {

std::string usage() {
  return R"(usage: infergate --config FILE [--workers N] [--log-level LEVEL]
       infergate --check-config FILE
       infergate --version | --help

A gRPC gateway in front of a fleet of NVIDIA Triton servers (KServe v2 protocol).

options:
  --config FILE         run the gateway with this YAML config
  --workers N           data-plane threads (default: the config's 'workers', else one
                        per core)
  --log-level LEVEL     trace, debug, info, warn, error, critical or off (default: the
                        config's 'log_level', else info)
  --check-config FILE   validate FILE, print every problem with file:line:column,
                        exit 0 if it is valid and 1 if not
  --version             print the version and exit
  --help                print this text and exit

signals: SIGTERM or SIGINT drains (stops accepting, lets in-flight requests finish
within drain_timeout) and exits 0; a second one exits at once.
)";
}

CliParse parse_cli(const std::vector<std::string>& args) {
  CliParse out;
  if (args.empty()) {
    out.error = "no options given";
    return out;
  }
  bool have_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) {
        out.error = a + " needs a value";
        return false;
      }
      into = args[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      out.options.action = CliOptions::Action::kHelp;
      return out;
    } else if (a == "--version") {
      out.options.action = CliOptions::Action::kVersion;
      return out;
    } else if (a == "--check-config") {
      out.options.action = CliOptions::Action::kCheckConfig;
      if (!value(out.options.config_path)) return out;
      have_config = true;
    } else if (a == "--config") {
      if (!value(out.options.config_path)) return out;
      have_config = true;
    } else if (a == "--workers") {
      std::string text;
      if (!value(text)) return out;
      int n = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec != std::errc() || ptr != text.data() + text.size() || n < 1 || n > 256) {
        out.error = "--workers needs a number from 1 to 256, got '" + text + "'";
        return out;
      }
      out.options.workers = n;
    } else if (a == "--log-level") {
      if (!value(out.options.log_level)) return out;
      static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
      bool known = false;
      for (const char* l : kLevels) known = known || out.options.log_level == l;
      if (!known) {
        out.error = "--log-level must be trace, debug, info, warn, error, critical or off";
        return out;
      }
    } else {
      out.error = "unknown option '" + a + "'";
      return out;
    }
  }
  if (!have_config) out.error = "--config FILE is required";
  return out;
}

std::string describe_bounds(const config::Config& c) {
  using config::format_bytes;
  using config::format_duration;
  const std::pair<const char*, std::string> lines[] = {
      {"limits.max_buffered_bytes", format_bytes(c.limits.max_buffered_bytes)},
      {"limits.max_routing_fields_bytes", format_bytes(c.limits.max_routing_fields_bytes)},
      {"limits.max_reorder_bytes", format_bytes(c.limits.max_reorder_bytes)},
      {"limits.max_control_message_bytes", format_bytes(c.limits.max_control_message_bytes)},
      {"limits.max_sequence_table_bytes", format_bytes(c.limits.max_sequence_table_bytes)},
      {"limits.max_job_table_bytes", format_bytes(c.limits.max_job_table_bytes)},
      {"limits.max_stream_messages_in_flight",
       std::to_string(c.limits.max_stream_messages_in_flight)},
      {"limits.backend_wait_timeout", format_duration(c.limits.backend_wait_timeout)},
      {"limits.queue_timeout", format_duration(c.limits.queue_timeout)},
      {"cluster.lease", c.cluster ? format_duration(c.cluster->lease) : "off (no cluster)"},
      {"cluster.timeout", c.cluster ? format_duration(c.cluster->timeout) : "off (no cluster)"},
      {"cluster redis answer", "1MiB, 65536 values (fixed)"},
      {"routing.wait_for_backend",
       c.routing.wait_for_backend
           ? "on (a request for a model no backend serves waits up to limits.queue_timeout)"
           : "off"},
      {"frontend.handshake_timeout", format_duration(c.frontend.handshake_timeout)},
      {"frontend.idle_timeout", format_duration(c.frontend.idle_timeout)},
      {"frontend.stream_idle_timeout", format_duration(c.frontend.stream_idle_timeout)},
      {"frontend.max_connections", std::to_string(c.frontend.max_connections)},
      {"frontend.max_header_bytes", format_bytes(c.frontend.max_header_bytes)},
      {"admin.max_connections", std::to_string(c.admin.max_connections)},
      {"admin.timeout", format_duration(c.admin.timeout)},
      {"frontend.max_concurrent_streams", std::to_string(c.frontend.max_concurrent_streams)},
      {"frontend.stream_window", format_bytes(c.frontend.stream_window_bytes)},
      {"frontend.connection_window", format_bytes(c.frontend.connection_window_bytes)},
      {"frontend.max_stream_window", format_bytes(c.frontend.max_stream_window_bytes)},
      {"upstream.connect_timeout", format_duration(c.upstream.connect_timeout)},
      {"upstream.stream_idle_timeout", format_duration(c.upstream.stream_idle_timeout)},
      {"upstream.keepalive_interval", format_duration(c.upstream.keepalive_interval)},
      {"upstream.keepalive_timeout", format_duration(c.upstream.keepalive_timeout)},
      {"upstream.max_streams_per_connection",
       std::to_string(c.upstream.max_streams_per_connection)},
      {"routing.retry_buffer", format_bytes(c.routing.retry_buffer_bytes)},
      {"auth.max_cached_tokens", std::to_string(c.auth.max_cached_tokens)},
      {"auth.jwks_timeout", format_duration(c.auth.jwks_timeout)},
      {"discovery.timeout", format_duration(c.discovery.timeout)},
      {"discovery.max_members", std::to_string(c.discovery.max_members)},
      {"drain_timeout", format_duration(c.drain_timeout)},
  };
  std::string out = "bounds:\n";
  for (const auto& [key, value] : lines) out += "  " + std::string(key) + " " + value + "\n";
  return out;
}

}  // namespace infergate::gateway
