#include "config/host_port.h"

#include <cctype>
#include <charconv>

namespace infergate::config {
namespace {

bool is_hostname_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Parsed<HostPort> parse_host_port(std::string_view text, bool allow_port_zero) {
  const std::string shown(text);
  if (text.find("://") != std::string_view::npos) {
    return {.error = "address '" + shown + "' must be host:port, without a scheme"};
  }
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return {.error = "address '" + shown + "' has an unclosed '['"};
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return {.error = "address '" + shown + "' needs a port after ']' (e.g. [::1]:8001)"};
    }
    port_text = rest.substr(1);
    if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      return {.error = "address '" + shown + "' has an invalid IPv6 literal"};
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return {.error = "address '" + shown + "' needs a port (host:port)"};
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return {.error = "address '" + shown + "' looks like IPv6: write it as [addr]:port"};
    }
    if (host.empty()) return {.error = "address '" + shown + "' has an empty host"};
    for (char c : host) {
      if (!is_hostname_char(c)) {
        return {.error = "address '" + shown + "' has an invalid character in its host"};
      }
    }
  }
  if (port_text.empty()) return {.error = "address '" + shown + "' has an empty port"};
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size()) {
    return {.error = "address '" + shown + "' has a port that is not a number"};
  }
  if (value > 65535) return {.error = "address '" + shown + "' has a port above 65535"};
  if (value == 0 && !allow_port_zero) {
    return {.error = "address '" + shown + "' has port 0; a backend needs a real port"};
  }
  return {.value = HostPort{.host = std::string(host), .port = static_cast<std::uint16_t>(value)}};
}

std::string HttpUrl::to_string() const {
  return (tls ? "https://" : "http://") + address.to_string() + path;
}

Parsed<HttpUrl> parse_http_url(std::string_view text) {
  const std::string shown(text);
  const std::string example = " (e.g. http://10.0.0.5:8002/metrics)";
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return {.error = "URL '" + shown + "' must start with http://" + example};
  }
  std::string scheme(text.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") {
    return {.error = "URL '" + shown + "' must be an http:// or https:// URL" + example};
  }
  const bool tls = scheme == "https";
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return {.error = "URL '" + shown + "' has a space or a control character"};
    }
  }
  if (text.find('#') != std::string_view::npos) {
    return {.error = "URL '" + shown + "' must not have a fragment ('#')"};
  }
  const std::string_view rest = text.substr(scheme_end + 3);
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) {
    return {.error = "URL '" + shown + "' must not carry user info ('@')"};
  }
  // The scheme's port when none is written ("host", "[::1]").
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  const bool has_port = colon != std::string_view::npos &&
                        (bracket == std::string_view::npos || colon > bracket) &&
                        (authority.front() == '[' || authority.find(':') == colon);
  const std::string with_port = std::string(authority) + (has_port ? "" : tls ? ":443" : ":80");
  Parsed<HostPort> address = parse_host_port(with_port, /*allow_port_zero=*/false);
  if (!address.ok()) return {.error = "URL '" + shown + "': " + address.error};
  if (slash == std::string_view::npos) {
    return {.error = "URL '" + shown + "' needs a path" + example};
  }
  return {.value = HttpUrl{
              .address = *address.value, .path = std::string(rest.substr(slash)), .tls = tls}};
}

std::string RedisUrl::to_string() const {
  std::string userinfo;
  if (!username.empty() || !password.empty()) {
    userinfo = username + (password.empty() ? "" : ":***") + "@";
  }
  return (tls ? "rediss://" : "redis://") + userinfo + address.to_string() +
         (db != 0 ? "/" + std::to_string(db) : "");
}

Parsed<RedisUrl> parse_redis_url(std::string_view text) {
  // Never shown whole: it may carry a password.
  const std::string example = " (e.g. redis://redis.infergate.svc:6379 or rediss://...)";
  const size_t scheme_end = text.find("://");
  std::string scheme(text.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "redis" && scheme != "rediss") {
    return {.error = "cluster.redis must be a redis:// or rediss:// URL" + example};
  }
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return {.error = "cluster.redis has a space or a control character"};
    }
  }
  RedisUrl url;
  url.tls = scheme == "rediss";
  std::string_view rest = text.substr(scheme_end + 3);
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    const size_t colon = userinfo.find(':');
    url.username = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) url.password = std::string(userinfo.substr(colon + 1));
    rest = rest.substr(at + 1);
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    int n = 0;
    if (!db.empty()) {
      const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), n);
      if (ec != std::errc() || end != db.data() + db.size() || n < 0 || n > 15) {
        return {.error = "cluster.redis: the database after '/' must be a number 0-15"};
      }
    }
    url.db = n;
  }
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  const bool has_port = colon != std::string_view::npos &&
                        (bracket == std::string_view::npos || colon > bracket) &&
                        (authority.front() == '[' || authority.find(':') == colon);
  Parsed<HostPort> address = parse_host_port(std::string(authority) + (has_port ? "" : ":6379"),
                                             /*allow_port_zero=*/false);
  if (!address.ok()) return {.error = "cluster.redis: " + address.error};
  url.address = *address.value;
  return {.value = std::move(url)};
}

}  // namespace infergate::config
