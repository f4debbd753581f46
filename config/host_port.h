// A network endpoint as written in config: "10.0.0.5:8001", "gpu-a.svc:8001", "[::1]:8001";
// and a plain-HTTP URL such as a backend's metrics page.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/units.h"

namespace infergate::config {

struct HostPort {
  std::string host;  // hostname, IPv4 literal or IPv6 literal (without brackets)
  std::uint16_t port = 0;

  // "host:port", with brackets around an IPv6 literal.
  std::string to_string() const;
  bool operator==(const HostPort&) const = default;
};

// Parses "host:port". Port 0 ("let the OS choose") is accepted only if allow_port_zero.
Parsed<HostPort> parse_host_port(std::string_view text, bool allow_port_zero);

// An HTTP or HTTPS URL as written in config: "http://10.0.0.5:8002/metrics".
struct HttpUrl {
  HostPort address;
  std::string path;  // starts with '/'; may carry a query
  bool tls = false;  // https

  // "http://host:port/path" (or https), with brackets around an IPv6 literal.
  std::string to_string() const;
  bool operator==(const HttpUrl&) const = default;
};

// Parses "http://host:port/path" or "https://...": a path; the port may be left out (80,
// 443) but not 0; no user info, no fragment, no spaces or control characters.
Parsed<HttpUrl> parse_http_url(std::string_view text);

// A Redis server as written in config: "redis://[user:password@]host:port[/db]", or
// rediss:// for TLS. The port may be left out (6379).
struct RedisUrl {
  HostPort address;
  bool tls = false;  // rediss
  std::string username;
  std::string password;
  int db = 0;

  // The URL without its password (for logs and --check-config).
  std::string to_string() const;
  bool operator==(const RedisUrl&) const = default;
};

Parsed<RedisUrl> parse_redis_url(std::string_view text);

}  // namespace infergate::config
