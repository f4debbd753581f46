#include "config/loader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

#include "config/jwks.h"
#include "config/yaml_reader.h"

namespace infergate::config {
namespace {

// limits.max_buffered_bytes when the file leaves it 0: a quarter of physical memory.
std::uint64_t default_buffer_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 1ull << 30;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 4;
}

bool valid_backend_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A file the gateway reads at start (and on reload): it must exist and be readable now.
void read_file_path(MapReader& m, std::string_view key, std::string& out, bool required) {
  std::optional<Value> x = required ? m.require(key) : m.get(key);
  if (!x) return;
  std::optional<std::string> path = x->string();
  if (!path) return;
  if (std::FILE* f = std::fopen(path->c_str(), "r")) {
    std::fclose(f);
    out = *path;
  } else {
    x->problem("cannot read " + *path + ": " + std::strerror(errno));
  }
}

// backends[].tls: the backend speaks gRPC over TLS (Triton's --grpc-use-ssl, and with
// cert and key, --grpc-use-ssl-mutual).
void read_backend_tls(const Value& v, BackendTlsConfig& t) {
  MapReader m(v);
  if (!m.valid()) return;
  read_file_path(m, "ca", t.ca, /*required=*/false);
  if (auto x = m.get("server_name")) {
    if (auto n = x->string()) t.server_name = *n;
  }
  std::optional<Value> cert = m.get("cert");
  read_file_path(m, "cert", t.cert, /*required=*/false);
  read_file_path(m, "key", t.key, /*required=*/false);
  if (t.cert.empty() != t.key.empty() && cert) {
    cert->problem("cert and key go together (the gateway's client certificate)");
  }
  m.finish();
}

BackendConfig read_backend(const Value& v) {
  BackendConfig b;
  MapReader m(v);
  if (!m.valid()) return b;
  if (auto name = m.require("name")) {
    if (auto s = name->string()) {
      if (valid_backend_name(*s)) {
        b.name = *s;
      } else {
        name->problem("backend name '" + *s +
                      "' must be 1-64 characters of letters, digits, '-', '_' or '.'");
      }
    }
  }
  std::optional<Value> address = m.get("address");
  std::optional<Value> dns = m.get("dns");
  std::optional<Value> srv = m.get("srv");
  if (static_cast<int>(address.has_value()) + dns.has_value() + srv.has_value() != 1) {
    v.problem(
        "a backend needs exactly one of address (one server), dns (every address of a "
        "name) or srv (SRV records)");
  }
  if (address) {
    if (auto hp = address->host_port(/*allow_port_zero=*/false)) b.address = *hp;
  }
  if (dns) {
    if (auto hp = dns->host_port(/*allow_port_zero=*/false)) b.dns = *hp;
  }
  if (srv) {
    if (auto s = srv->string()) {
      if (s->empty() || s->find_first_of(" /:") != std::string::npos) {
        srv->problem("srv must be a DNS name such as _grpc._tcp.triton.ns.svc");
      } else {
        b.srv = *s;
      }
    }
  }
  if (auto weight = m.get("weight")) {
    if (auto w = weight->number(0.01, 1000)) b.weight = *w;
  }
  if (auto x = m.get("max_inflight")) {
    if (auto n = x->integer(0, 1 << 20)) b.max_inflight = static_cast<std::uint32_t>(*n);
  }
  if (auto x = m.get("compression")) {
    if (auto c = x->choice({"none", "gzip", "deflate"})) b.compression = *c;
  }
  if (auto x = m.get("compression_min_bytes")) {
    if (auto n = x->bytes()) b.compression_min_bytes = *n;
  }
  if (auto x = m.get("tls")) read_backend_tls(*x, b.tls.emplace());
  if (auto x = m.get("metrics_url")) {
    if (auto s = x->string()) {
      Parsed<HttpUrl> url = parse_http_url(*s);
      if (url.ok()) {
        b.metrics_url = *url.value;
      } else {
        x->problem(url.error);
      }
    }
  }
  m.finish();
  return b;
}

// Checks that need the whole list: unique names and addresses.
void check_backends(const Value& list, const std::vector<BackendConfig>& backends) {
  std::map<std::string, size_t> names;
  std::map<std::string, size_t> addresses;
  for (size_t i = 0; i < backends.size(); ++i) {
    const BackendConfig& b = backends[i];
    Value item(list.node()[i], list.path() + "[" + std::to_string(i) + "]", list.sink());
    if (!b.name.empty()) {
      auto [it, inserted] = names.emplace(b.name, i);
      if (!inserted) {
        item.problem("duplicate backend name '" + b.name + "' (also backends[" +
                     std::to_string(it->second) + "])");
      }
    }
    if (b.address.port != 0) {
      auto [it, inserted] = addresses.emplace(b.address.to_string(), i);
      if (!inserted) {
        item.problem("backend address " + b.address.to_string() + " is also backends[" +
                     std::to_string(it->second) + "]");
      }
    }
  }
}

// HTTP/2 windows must stay within the protocol's 2^31-1 and be worth having.
std::optional<std::uint64_t> read_window(const Value& v) {
  std::optional<std::uint64_t> bytes = v.bytes();
  if (!bytes) return std::nullopt;
  if (*bytes < 65535 || *bytes > 0x7fffffff) {
    v.problem("a flow-control window must be between 64KiB and 2GiB-1");
    return std::nullopt;
  }
  return bytes;
}

// A duration that must be positive.
void read_positive(MapReader& m, std::string_view key, std::chrono::nanoseconds& out) {
  if (auto x = m.get(key)) {
    if (auto d = x->duration()) {
      if (d->count() > 0) {
        out = *d;
      } else {
        x->problem(std::string(key) + " must be positive");
      }
    }
  }
}

// A size in [min, max] bytes.
void read_size(MapReader& m, std::string_view key, std::uint64_t min, std::uint64_t max,
               std::uint64_t& out) {
  if (auto x = m.get(key)) {
    if (auto n = x->bytes()) {
      if (*n >= min && *n <= max) {
        out = *n;
      } else {
        x->problem(std::string(key) + " must be between " + format_bytes(min) + " and " +
                   format_bytes(max));
      }
    }
  }
}

void read_frontend_tls(const Value& v, FrontendTlsConfig& t) {
  MapReader m(v);
  if (!m.valid()) return;
  read_file_path(m, "cert", t.cert, /*required=*/true);
  read_file_path(m, "key", t.key, /*required=*/true);
  read_file_path(m, "client_ca", t.client_ca, /*required=*/false);
  std::optional<Value> require = m.get("require_client_cert");
  if (require) {
    if (auto b = require->boolean()) t.require_client_cert = *b;
    if (t.require_client_cert && t.client_ca.empty()) {
      require->problem(
          "require_client_cert needs client_ca (the CAs client certificates chain to)");
    }
  }
  if (auto x = m.get("min_version")) {
    if (auto c = x->choice({"1.2", "1.3"})) t.min_version = *c;
  }
  m.finish();
}

void read_frontend(const Value& v, FrontendConfig& f) {
  MapReader m(v);
  if (auto x = m.get("tls")) read_frontend_tls(*x, f.tls.emplace());
  if (auto x = m.get("max_concurrent_streams")) {
    if (auto n = x->integer(1, 1 << 20)) f.max_concurrent_streams = static_cast<std::uint32_t>(*n);
  }
  if (auto x = m.get("stream_window")) {
    if (auto n = read_window(*x)) f.stream_window_bytes = *n;
  }
  if (auto x = m.get("connection_window")) {
    if (auto n = read_window(*x)) f.connection_window_bytes = *n;
  }
  if (auto x = m.get("max_stream_window")) {
    if (auto n = read_window(*x)) {
      if (*n < f.stream_window_bytes) {
        x->problem("frontend.max_stream_window must be at least frontend.stream_window");
      } else {
        f.max_stream_window_bytes = *n;
      }
    }
  } else {
    f.max_stream_window_bytes = std::max(f.max_stream_window_bytes, f.stream_window_bytes);
  }
  if (auto x = m.get("response_compression")) {
    if (auto c = x->choice({"none", "gzip", "deflate"})) f.response_compression = *c;
  }
  if (auto x = m.get("response_compression_min_bytes")) {
    if (auto n = x->bytes()) f.response_compression_min_bytes = *n;
  }
  read_positive(m, "handshake_timeout", f.handshake_timeout);
  read_positive(m, "idle_timeout", f.idle_timeout);
  read_positive(m, "stream_idle_timeout", f.stream_idle_timeout);
  if (auto x = m.get("max_connections")) {
    if (auto n = x->integer(1, 1 << 24)) f.max_connections = static_cast<std::uint32_t>(*n);
  }
  read_size(m, "max_header_bytes", 1024, 16 << 20, f.max_header_bytes);
  m.finish();
}

void read_upstream(const Value& v, UpstreamConfig& u) {
  MapReader m(v);
  if (auto x = m.get("connect_timeout")) {
    if (auto d = x->duration()) {
      if (d->count() > 0) {
        u.connect_timeout = *d;
      } else {
        x->problem("connect_timeout must be positive");
      }
    }
  }
  if (auto x = m.get("streams_per_connection")) {
    if (auto n = x->integer(1, 1 << 20)) u.streams_per_connection = static_cast<std::uint32_t>(*n);
  }
  if (auto x = m.get("connections_per_backend")) {
    if (auto n = x->integer(1, 1024)) u.connections_per_backend = static_cast<std::uint32_t>(*n);
  }
  read_positive(m, "stream_idle_timeout", u.stream_idle_timeout);
  read_positive(m, "keepalive_interval", u.keepalive_interval);
  read_positive(m, "keepalive_timeout", u.keepalive_timeout);
  if (auto x = m.get("max_streams_per_connection")) {
    if (auto n = x->integer(1, 1 << 30)) {
      u.max_streams_per_connection = static_cast<std::uint32_t>(*n);
    }
  }
  m.finish();
}

void read_count(MapReader& m, std::string_view key, int min, int max, int& out) {
  if (auto x = m.get(key)) {
    if (auto n = x->integer(min, max)) out = static_cast<int>(*n);
  }
}

// routing.models: each has its own per-model series, which are bounded (64 per worker,
// the last one "other").
constexpr size_t kMaxListedModels = 63;
constexpr size_t kMaxListedModelName = 256;

void read_routing(const Value& v, RoutingConfig& r) {
  MapReader m(v);
  if (auto x = m.get("policy")) {
    if (auto p = x->choice({"least_loaded", "round_robin", "random"})) r.policy = *p;
  }
  read_count(m, "retries", 0, 10, r.retries);
  if (auto x = m.get("retry_budget_percent")) {
    if (auto p = x->number(0, 100)) r.retry_budget_percent = *p;
  }
  read_positive(m, "sequence_idle_timeout", r.sequence_idle_timeout);
  if (auto x = m.get("sequence_placement")) {
    if (auto p = x->choice({"hash", "load"})) r.sequence_placement = *p;
  }
  if (auto x = m.get("retry_buffer")) {
    if (auto b = x->bytes()) r.retry_buffer_bytes = *b;
  }
  if (auto x = m.get("latency_aware")) {
    if (auto b = x->boolean()) r.latency_aware = *b;
  }
  if (auto x = m.get("wait_for_backend")) {
    if (auto b = x->boolean()) r.wait_for_backend = *b;
  }
  if (auto x = m.get("models")) {
    x->for_each_element([&](const Value& item) {
      if (auto name = item.string()) {
        if (name->empty() || name->size() > kMaxListedModelName) {
          item.problem("a model name must be 1 to " + std::to_string(kMaxListedModelName) +
                       " bytes long");
        } else if (r.models.size() == kMaxListedModels) {
          item.problem("routing.models lists at most " + std::to_string(kMaxListedModels) +
                       " models (the per-model metrics' label bound)");
        } else if (std::find(r.models.begin(), r.models.end(), *name) == r.models.end()) {
          r.models.push_back(*name);
        }
      }
    });
  }
  m.finish();
}

void read_health(const Value& v, HealthConfig& h) {
  MapReader m(v);
  read_positive(m, "interval", h.interval);
  read_positive(m, "timeout", h.timeout);
  read_count(m, "unhealthy_threshold", 1, 100, h.unhealthy_threshold);
  read_count(m, "healthy_threshold", 1, 100, h.healthy_threshold);
  read_positive(m, "inventory_interval", h.inventory_interval);
  read_count(m, "consecutive_failures", 1, 1000, h.consecutive_failures);
  read_positive(m, "ejection_base", h.ejection_base);
  read_positive(m, "ejection_max", h.ejection_max);
  if (auto x = m.get("max_ejected_percent")) {
    if (auto p = x->number(0, 100)) h.max_ejected_percent = *p;
  }
  if (auto x = m.get("slow_start")) {
    if (auto d = x->duration()) h.slow_start = *d;  // 0s turns it off
  }
  read_positive(m, "metrics_interval", h.metrics_interval);
  read_positive(m, "metrics_timeout", h.metrics_timeout);
  m.finish();
  if (h.ejection_max < h.ejection_base) {
    v.problem("health.ejection_max must not be shorter than health.ejection_base");
  }
  if (h.timeout > h.interval) v.problem("health.timeout must not exceed health.interval");
  if (h.metrics_timeout > h.metrics_interval) {
    v.problem("health.metrics_timeout must not exceed health.metrics_interval");
  }
}

void read_limits(const Value& v, LimitsConfig& l) {
  MapReader m(v);
  if (auto x = m.get("job_header")) {
    if (auto s = x->string()) {
      std::string key = *s;
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const bool ok =
          !key.empty() && key.front() != ':' && !key.starts_with("grpc-") &&
          key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") == std::string::npos;
      if (ok) {
        l.job_header = key;
      } else {
        x->problem("job_header '" + *s +
                   "' must be a gRPC metadata key: letters, digits, '-', '_', '.', not "
                   "starting with ':' or 'grpc-'");
      }
    }
  }
  read_positive(m, "job_idle_timeout", l.job_idle_timeout);
  auto count = [&](std::string_view key, std::uint32_t& out) {
    if (auto x = m.get(key)) {
      if (auto n = x->integer(0, 1 << 30)) out = static_cast<std::uint32_t>(*n);
    }
  };
  count("max_jobs", l.max_jobs);
  count("max_inflight", l.max_inflight);
  count("per_job_max_inflight", l.per_job_max_inflight);
  if (auto x = m.get("max_bytes_in_flight")) {
    if (auto n = x->bytes()) l.max_bytes_in_flight = *n;
  }
  if (auto x = m.get("link_bandwidth")) {
    if (auto r = x->rate()) l.link_bandwidth = *r;
  }
  if (auto x = m.get("link_burst")) {
    if (auto n = x->bytes()) l.link_burst = *n;
  }
  count("max_queue", l.max_queue);
  read_positive(m, "queue_timeout", l.queue_timeout);
  read_size(m, "max_buffered_bytes", 0, std::uint64_t{1} << 50, l.max_buffered_bytes);
  read_size(m, "max_routing_fields_bytes", 1024, 64ull << 20, l.max_routing_fields_bytes);
  read_size(m, "max_reorder_bytes", 1024, 2ull << 30, l.max_reorder_bytes);
  read_size(m, "max_control_message_bytes", 1024, 2ull << 30, l.max_control_message_bytes);
  read_size(m, "max_sequence_table_bytes", 64 * 1024, std::uint64_t{1} << 40,
            l.max_sequence_table_bytes);
  read_size(m, "max_job_table_bytes", 64 * 1024, std::uint64_t{1} << 40, l.max_job_table_bytes);
  if (auto x = m.get("max_stream_messages_in_flight")) {
    if (auto n = x->integer(1, 1 << 20))
      l.max_stream_messages_in_flight = static_cast<std::uint32_t>(*n);
  }
  read_positive(m, "backend_wait_timeout", l.backend_wait_timeout);
  if (auto groups = m.get("groups")) {
    groups->for_each_element([&](const Value& item) {
      MapReader g(item);
      if (!g.valid()) return;
      GroupLimitsConfig group;
      if (auto x = g.require("name")) {
        if (auto s = x->string()) group.name = *s;
      }
      for (const GroupLimitsConfig& seen : l.groups) {
        if (!group.name.empty() && seen.name == group.name) {
          item.problem("group " + group.name + " is listed twice");
        }
      }
      if (auto x = g.get("max_jobs")) {
        if (auto n = x->integer(0, 1 << 30)) group.max_jobs = static_cast<std::uint32_t>(*n);
      }
      if (auto x = g.get("max_inflight")) {
        if (auto n = x->integer(0, 1 << 30)) group.max_inflight = static_cast<std::uint32_t>(*n);
      }
      if (auto x = g.get("link_bandwidth_share")) {
        if (auto share = x->number(0, 1)) {
          group.link_bandwidth_share = *share;
          if (*share > 0 && l.link_bandwidth == 0) {
            x->problem(
                "link_bandwidth_share is a share of limits.link_bandwidth, which is not set");
          }
        }
      }
      g.finish();
      l.groups.push_back(std::move(group));
    });
  }
  m.finish();
}

// tokens_file: one token per line, "SHA256HEX GROUP" (the hash of the bearer token, never
// the token), '#' comments and blank lines ignored.
void read_tokens_file(const Value& where, const std::string& path, std::vector<TokenHash>& out) {
  std::ifstream in(path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream fields(line);
    std::string hash;
    std::string group;
    std::string extra;
    fields >> hash >> group >> extra;
    if (hash.empty() || hash.front() == '#') continue;
    if (hash.starts_with("sha256:")) hash = hash.substr(7);
    for (char& c : hash) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool hex =
        hash.size() == 64 && hash.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex || group.empty() || !extra.empty()) {
      where.problem(path + " line " + std::to_string(number) +
                    ": expected \"SHA256HEX GROUP\" (the token's SHA-256, never the token)");
      continue;
    }
    out.push_back({hash, group});
  }
  if (out.empty()) where.problem(path + " lists no token");
}

void read_admin(const Value& v, AdminConfig& a) {
  MapReader m(v);
  if (auto x = m.get("max_connections")) {
    if (auto n = x->integer(1, 1 << 16)) a.max_connections = static_cast<std::uint32_t>(*n);
  }
  read_positive(m, "timeout", a.timeout);
  read_file_path(m, "tokens_file", a.tokens_file, /*required=*/false);
  if (!a.tokens_file.empty()) read_tokens_file(*m.get("tokens_file"), a.tokens_file, a.tokens);
  if (auto x = m.get("tls")) {
    MapReader t(*x);
    if (t.valid()) {
      AdminTlsConfig& tls = a.tls.emplace();
      read_file_path(t, "cert", tls.cert, /*required=*/true);
      read_file_path(t, "key", tls.key, /*required=*/true);
      t.finish();
    }
  }
  m.finish();
}

// One string, or a list of strings.
std::vector<std::string> read_string_or_list(const Value& v) {
  std::vector<std::string> out;
  if (v.node().IsSequence()) {
    v.for_each_element([&](const Value& item) {
      if (auto s = item.string()) out.push_back(*s);
    });
  } else if (auto s = v.string()) {
    out.push_back(*s);
  }
  return out;
}

JwtIssuerConfig read_jwt_issuer(const Value& v) {
  JwtIssuerConfig issuer;
  MapReader m(v);
  if (!m.valid()) return issuer;
  if (auto x = m.require("issuer")) {
    if (auto s = x->string()) issuer.issuer = *s;
  }
  read_file_path(m, "jwks_file", issuer.jwks_file, /*required=*/false);
  if (!issuer.jwks_file.empty()) {
    std::ifstream in(issuer.jwks_file);
    std::stringstream text;
    text << in.rdbuf();
    issuer.jwks = text.str();
    const JwksKeys keys = parse_jwks(issuer.jwks);
    if (!keys.error.empty()) m.get("jwks_file")->problem(issuer.jwks_file + ": " + keys.error);
  }
  if (auto x = m.get("jwks_url")) {
    if (auto url = x->string()) {
      Parsed<HttpUrl> parsed = parse_http_url(*url);
      if (parsed.ok()) {
        issuer.jwks_url = *url;
      } else {
        x->problem(parsed.error);
      }
    }
  }
  read_file_path(m, "jwks_ca", issuer.jwks_ca, /*required=*/false);
  if (issuer.jwks_file.empty() && issuer.jwks_url.empty() && !issuer.issuer.empty()) {
    v.problem("issuer " + issuer.issuer + " needs jwks_file or jwks_url (where its keys are)");
  }
  if (auto x = m.get("audience")) issuer.audience = read_string_or_list(*x);
  if (auto x = m.get("group")) {
    if (auto s = x->string()) issuer.group = *s;
  }
  if (issuer.group.empty()) issuer.group = issuer.issuer;
  m.finish();
  return issuer;
}

void read_auth(const Value& v, AuthConfig& a) {
  MapReader m(v);
  if (!m.valid()) return;
  if (auto mode = m.get("mode")) {
    if (auto c = mode->choice({"none", "token", "jwt"})) a.mode = *c;
  }
  read_file_path(m, "tokens_file", a.tokens_file, /*required=*/a.mode == "token");
  if (a.mode == "token" && !a.tokens_file.empty()) {
    read_tokens_file(*m.get("tokens_file"), a.tokens_file, a.tokens);
  }
  if (auto x = m.get("allow_unauthenticated_health")) {
    if (auto b = x->boolean()) a.allow_unauthenticated_health = *b;
  }
  std::optional<Value> issuers = a.mode == "jwt" ? m.require("issuers") : m.get("issuers");
  if (issuers) {
    issuers->for_each_element([&](const Value& item) {
      JwtIssuerConfig issuer = read_jwt_issuer(item);
      for (const JwtIssuerConfig& seen : a.issuers) {
        if (!issuer.issuer.empty() && seen.issuer == issuer.issuer) {
          item.problem("issuer " + issuer.issuer + " is listed twice");
        }
      }
      a.issuers.push_back(std::move(issuer));
    });
    if (a.mode == "jwt" && a.issuers.empty()) issuers->problem("auth.mode jwt needs an issuer");
  }
  if (auto x = m.get("required_scope")) {
    if (auto s = x->string()) a.required_scope = *s;
  }
  if (auto x = m.get("job_claim")) {
    if (auto s = x->string(); s && !s->empty()) a.job_claim = *s;
  }
  read_positive(m, "jwks_refresh", a.jwks_refresh);
  read_positive(m, "jwks_timeout", a.jwks_timeout);
  if (auto x = m.get("max_cached_tokens")) {
    if (auto n = x->integer(1, 10000000)) a.max_cached_tokens = static_cast<std::uint32_t>(*n);
  }
  m.finish();
}

void read_discovery(const Value& v, DiscoveryConfig& d) {
  MapReader m(v);
  if (!m.valid()) return;
  read_positive(m, "interval", d.interval);
  read_positive(m, "timeout", d.timeout);
  if (auto x = m.get("max_members")) {
    if (auto n = x->integer(1, 65536)) d.max_members = static_cast<std::uint32_t>(*n);
  }
  if (auto x = m.get("resolvers")) {
    x->for_each_element([&](const Value& item) {
      if (auto hp = item.host_port(/*allow_port_zero=*/false)) d.resolvers.push_back(*hp);
    });
  }
  m.finish();
}

void read_cluster(const Value& v, std::optional<ClusterConfig>& out) {
  MapReader m(v);
  if (!m.valid()) return;
  ClusterConfig c;
  if (auto x = m.require("redis")) {
    if (auto text = x->string()) {
      Parsed<RedisUrl> url = parse_redis_url(*text);
      if (url.ok()) {
        c.redis = *url.value;
      } else {
        x->problem(url.error);
      }
    }
  }
  if (auto x = m.get("name")) {
    if (auto name = x->string()) {
      const bool ok = !name->empty() && name->size() <= 64 &&
                      std::all_of(name->begin(), name->end(), [](char ch) {
                        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
                               ch == '_' || ch == '.';
                      });
      if (ok) {
        c.name = *name;
      } else {
        x->problem("cluster.name must be 1 to 64 letters, digits, '-', '_' or '.'");
      }
    }
  }
  if (auto x = m.get("lease")) {
    if (auto d = x->duration()) {
      if (*d < std::chrono::milliseconds(20) || *d > std::chrono::minutes(1)) {
        x->problem("cluster.lease must be between 20ms and 1m");
      } else {
        c.lease = *d;
      }
    }
  }
  // A Redis answer later than half a lease would let leases lapse while this replica
  // still counts on them: the timeout is at most that (and that by default).
  c.timeout = c.lease / 2;
  if (auto x = m.get("timeout")) {
    if (auto d = x->duration()) {
      if (*d <= std::chrono::nanoseconds(0) || *d > c.lease / 2) {
        x->problem("cluster.timeout must be positive and at most half of cluster.lease (" +
                   std::to_string(
                       std::chrono::duration_cast<std::chrono::milliseconds>(c.lease / 2).count()) +
                   "ms)");
      } else {
        c.timeout = *d;
      }
    }
  }
  if (auto x = m.get("ca")) {
    if (auto path = x->string()) c.ca = *path;
  }
  read_count(m, "expected_replicas", 1, 1000, c.expected_replicas);
  m.finish();
  out = std::move(c);
}

void read_process(MapReader& m, Config& config) {
  if (auto x = m.get("workers")) {
    if (auto n = x->integer(0, 256)) config.workers = static_cast<int>(*n);
  }
  if (auto x = m.get("drain_timeout")) {
    if (auto d = x->duration()) config.drain_timeout = *d;
  }
  if (auto x = m.get("access_log")) {
    if (auto b = x->boolean()) config.access_log = *b;
  }
  if (auto x = m.get("log_level")) {
    if (auto level = x->choice({"trace", "debug", "info", "warn", "error", "critical", "off"})) {
      config.log_level = *level;
    }
  }
  if (auto x = m.get("frontend")) read_frontend(*x, config.frontend);
  if (auto x = m.get("admin")) read_admin(*x, config.admin);
  if (auto x = m.get("upstream")) read_upstream(*x, config.upstream);
  if (auto x = m.get("routing")) read_routing(*x, config.routing);
  if (auto x = m.get("health")) read_health(*x, config.health);
  if (auto x = m.get("limits")) read_limits(*x, config.limits);
  if (auto x = m.get("auth")) read_auth(*x, config.auth);
  if (auto x = m.get("discovery")) read_discovery(*x, config.discovery);
  if (auto x = m.get("cluster")) read_cluster(*x, config.cluster);
  if (auto x = m.get("allow_repository_control")) {
    if (auto b = x->boolean()) config.allow_repository_control = *b;
  }
}

void read_root(const Value& root, Config& config) {
  MapReader m(root);
  if (!m.valid()) return;
  std::optional<Value> listen = m.get("listen");
  if (listen) {
    if (auto hp = listen->host_port(/*allow_port_zero=*/true)) config.listen = *hp;
  }
  if (auto admin = m.get("admin_listen")) {
    if (auto hp = admin->host_port(/*allow_port_zero=*/true)) {
      config.admin_listen = *hp;
      if (hp->port != 0 && hp->port == config.listen.port &&
          (hp->host == config.listen.host || hp->host == "0.0.0.0" ||
           config.listen.host == "0.0.0.0")) {
        admin->problem("admin_listen " + hp->to_string() + " collides with listen " +
                       config.listen.to_string());
      }
    }
  }
  std::optional<Value> plain = m.get("listen_plaintext");
  if (plain) {
    if (auto hp = plain->host_port(/*allow_port_zero=*/true)) {
      config.listen_plaintext = *hp;
      if (hp->port != 0 &&
          (hp->port == config.listen.port || hp->port == config.admin_listen.port)) {
        plain->problem("listen_plaintext " + hp->to_string() +
                       " collides with listen or admin_listen");
      }
    }
  }
  if (auto backends = m.require("backends")) {
    bool is_list = backends->for_each_element(
        [&](const Value& item) { config.backends.push_back(read_backend(item)); });
    if (is_list && config.backends.empty()) {
      backends->problem("at least one backend is required");
    }
    if (is_list) check_backends(*backends, config.backends);
  }
  read_process(m, config);
  if (plain && config.listen_plaintext && !config.frontend.tls) {
    plain->problem(
        "listen_plaintext is a second listener beside a TLS one: set frontend.tls "
        "(without it, listen is plaintext already)");
  }
  m.finish();
}

}  // namespace

LoadResult load_config_string(std::string_view yaml, const std::string& source) {
  ProblemSink sink(source);
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    sink.add("", e.mark, "YAML syntax error: " + e.msg);
    return LoadResult{.problems = std::move(sink.problems())};
  }
  if (doc.IsNull()) {
    sink.add("", YAML::Mark(), "the config is empty; it needs at least 'backends'");
    return LoadResult{.problems = std::move(sink.problems())};
  }
  auto config = std::make_shared<Config>();
  config->source = source;
  read_root(Value(doc, "", &sink), *config);
  if (config->limits.max_buffered_bytes == 0) {
    config->limits.max_buffered_bytes = default_buffer_budget();
  }
  if (!sink.problems().empty()) return LoadResult{.problems = std::move(sink.problems())};
  return LoadResult{.config = std::move(config)};
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return LoadResult{.problems = {Problem{.file = path, .message = "cannot open the file"}}};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_string(text.str(), path);
}

}  // namespace infergate::config
