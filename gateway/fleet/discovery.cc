#include "gateway/fleet/discovery.h"

#include <ares.h>
#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "gateway/logging.h"

namespace infergate::gateway {
namespace {

// The DNS class and the SRV type (RFC 1035, RFC 2782).
constexpr int kClassIn = 1;
constexpr int kTypeSrv = 33;
constexpr int kMaxAddresses = 256;  // per answer

struct AresLibrary {
  AresLibrary() { ares_library_init(ARES_LIB_INIT_ALL); }
  ~AresLibrary() { ares_library_cleanup(); }
};

bool is_ip_literal(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

bool by_host_name(const config::BackendConfig& b) {
  return b.srv.empty() && b.dns.port == 0 && b.address.port != 0 && !is_ip_literal(b.address.host);
}

std::string ip_text(const void* address, int family) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, address, text, sizeof text);
  return text;
}

}  // namespace

// One round of questions. c-ares calls back on this thread, inside ares_process_fd().
struct Discovery::Round {
  // An entry's questions: it failed when none of them was answered (a server may refuse
  // AAAA for a name it only has A records of, and the A answer still stands).
  struct Answer {
    int answered = 0;
    int failed = 0;
    std::string why;
    std::vector<config::HostPort> addresses;
    size_t srv_targets = 0;  // SRV records named (before discovery.max_members)
  };
  struct Query {
    Round* round;
    std::string entry;
    std::uint16_t port;
    int type;  // kTypeSrv, or 0: a host's addresses (getaddrinfo: the hosts file, then DNS)
  };

  ares_channel channel = nullptr;
  std::map<std::string, Answer> answers;  // by entry name
  int min_ttl = -1;
  size_t max_members = 256;  // discovery.max_members

  void ask_srv(const std::string& entry, const std::string& name) {
    ares_query(channel, name.c_str(), kClassIn, kTypeSrv, &Round::on_answer,
               new Query{this, entry, 0, kTypeSrv});
  }
  void ask_host(const std::string& entry, const std::string& host, std::uint16_t port) {
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    ares_getaddrinfo(channel, host.c_str(), nullptr, &hints, &Round::on_addresses,
                     new Query{this, entry, port, 0});
  }

  // Answers are counted for the entry; a failure is kept unless another answer comes.
  static bool count(Answer& a, int status) {
    if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {  // no such records
      ++a.answered;
      return false;
    }
    if (status != ARES_SUCCESS) {
      ++a.failed;
      a.why = ares_strerror(status);
      return false;
    }
    ++a.answered;
    return true;
  }

  static void on_addresses(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    Round& r = *q->round;
    Answer& a = r.answers[q->entry];
    if (count(a, status) && result != nullptr) {
      int n = 0;
      for (ares_addrinfo_node* node = result->nodes; node != nullptr && n < kMaxAddresses;
           node = node->ai_next, ++n) {
        const void* ip = node->ai_family == AF_INET6
                             ? static_cast<const void*>(
                                   &reinterpret_cast<sockaddr_in6*>(node->ai_addr)->sin6_addr)
                             : &reinterpret_cast<sockaddr_in*>(node->ai_addr)->sin_addr;
        a.addresses.push_back({.host = ip_text(ip, node->ai_family), .port = q->port});
        if (node->ai_ttl >= 0) r.note_ttl(node->ai_ttl);
      }
    }
    if (result != nullptr) ares_freeaddrinfo(result);
  }

  void note_ttl(int ttl) { min_ttl = min_ttl < 0 ? ttl : std::min(min_ttl, ttl); }

  static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    Round& r = *q->round;
    Answer& a = r.answers[q->entry];
    if (!count(a, status)) return;
    ares_srv_reply* srv = nullptr;
    if (ares_parse_srv_reply(abuf, alen, &srv) != ARES_SUCCESS) {
      --a.answered;
      ++a.failed;
      a.why = "an SRV answer that does not parse";
      return;
    }
    // Each target's addresses, on the record's port: the first max_members targets in
    // order (not the answer's, which a server may rotate), so every round and every
    // replica follows the same ones.
    std::vector<std::pair<std::string, std::uint16_t>> targets;
    for (ares_srv_reply* s = srv; s != nullptr; s = s->next) targets.emplace_back(s->host, s->port);
    ares_free_data(srv);
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    a.srv_targets += targets.size();
    if (targets.size() > r.max_members) targets.resize(r.max_members);
    for (const auto& [host, port] : targets) r.ask_host(q->entry, host, port);
  }
};

Discovery::Discovery(boost::asio::io_context& control, OnChange on_change)
    : control_(control), on_change_(std::move(on_change)) {
  static AresLibrary library;
  thread_ = std::thread([this] { run(); });
}

Discovery::~Discovery() {
  *alive_ = false;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::vector<Discovery::Entry> Discovery::entries_of(const config::Config& config) {
  std::vector<Entry> entries;
  for (const config::BackendConfig& b : config.backends) {
    if (!b.srv.empty()) {
      entries.push_back({.name = b.name, .srv = b.srv});
    } else if (b.dns.port != 0) {
      entries.push_back({.name = b.name, .host = b.dns.host, .port = b.dns.port});
    } else if (by_host_name(b)) {
      entries.push_back({.name = b.name, .host = b.address.host, .port = b.address.port});
    }
  }
  return entries;
}

Discovery::Found Discovery::first_round(const config::Config& config) {
  int ttl = -1;
  Found found = resolve(entries_of(config), config.discovery.resolvers, config.discovery.timeout,
                        config.discovery.max_members, {}, ttl);
  std::lock_guard lock(mu_);
  last_ = found;
  return found;
}

void Discovery::configure(const config::Config& config) {
  std::vector<Entry> entries = entries_of(config);
  {
    std::lock_guard lock(mu_);
    entries_ = std::move(entries);
    servers_ = config.discovery.resolvers;
    interval_ = config.discovery.interval;
    timeout_ = config.discovery.timeout;
    max_members_ = config.discovery.max_members;
    again_ = true;
  }
  wake_.notify_all();
}

void Discovery::resolve_now() {
  {
    std::lock_guard lock(mu_);
    again_ = true;
  }
  wake_.notify_all();
}

void Discovery::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (entries_.empty()) {
      wake_.wait(lock, [&] { return stop_ || again_; });
      again_ = false;
      continue;
    }
    const std::vector<Entry> entries = entries_;
    const std::vector<config::HostPort> servers = servers_;
    const auto interval = interval_;
    const auto timeout = timeout_;
    const size_t max_members = max_members_;
    again_ = false;
    lock.unlock();
    int ttl = -1;
    Found found = resolve(entries, servers, timeout, max_members, last_, ttl);
    lock.lock();
    if (stop_) break;
    if (found != last_) {
      last_ = found;
      boost::asio::post(control_, [alive = alive_, on_change = on_change_, found] {
        if (*alive) on_change(found);
      });
    }
    // Rounds are kMinPeriod apart whatever asks for one (a storm of connection failures
    // must not become a storm of DNS questions).
    wake_.wait_for(lock, kMinPeriod, [&] { return stop_; });
    if (stop_) break;
    std::chrono::nanoseconds period = interval - kMinPeriod;
    if (ttl >= 0) period = std::min<std::chrono::nanoseconds>(period, std::chrono::seconds(ttl));
    period = std::max<std::chrono::nanoseconds>(period, std::chrono::nanoseconds(0));
    wake_.wait_for(lock, period, [&] { return stop_ || again_; });
  }
}

Discovery::Found Discovery::resolve(const std::vector<Entry>& entries,
                                    const std::vector<config::HostPort>& servers,
                                    std::chrono::nanoseconds timeout, size_t max_members,
                                    const Found& last, int& min_ttl) {
  Round round;
  round.max_members = max_members;
  ares_options options{};
  const auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  options.timeout = static_cast<int>(std::max<std::int64_t>(100, timeout_ms / 2));
  options.tries = 2;
  Found found;
  if (ares_init_options(&round.channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
      ARES_SUCCESS) {
    gateway_log().warn("discovery_failed error=\"c-ares could not start\"");
    return last;
  }
  if (!servers.empty()) {
    std::string csv;
    for (const config::HostPort& s : servers) csv += (csv.empty() ? "" : ",") + s.to_string();
    ares_set_servers_ports_csv(round.channel, csv.c_str());
  }
  for (const Entry& e : entries) {
    round.answers[e.name];
    if (!e.srv.empty()) {
      round.ask_srv(e.name, e.srv);
    } else {
      round.ask_host(e.name, e.host, e.port);
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(round.channel, sockets, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events != 0) fds.push_back({sockets[i], events, 0});
    }
    if (fds.empty()) break;  // every question answered
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0)) break;
    timeval most{};
    const auto left_us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    most.tv_sec = left_us / 1000000;
    most.tv_usec = left_us % 1000000;
    timeval tv{};
    const timeval* wait = ares_timeout(round.channel, &most, &tv);
    const int wait_ms = static_cast<int>(wait->tv_sec * 1000 + (wait->tv_usec + 999) / 1000);
    const int ready = ::poll(fds.data(), fds.size(), wait_ms);
    if (ready <= 0) {
      ares_process_fd(round.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // retries, timeouts
      continue;
    }
    for (const pollfd& p : fds) {
      const bool readable = (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
      const bool writable = (p.revents & POLLOUT) != 0;
      if (readable || writable) {
        ares_process_fd(round.channel, readable ? p.fd : ARES_SOCKET_BAD,
                        writable ? p.fd : ARES_SOCKET_BAD);
      }
    }
  }
  ares_cancel(round.channel);  // what is still unanswered fails (ARES_ECANCELLED)
  ares_destroy(round.channel);
  for (auto& [name, answer] : round.answers) {
    if (answer.answered == 0 && answer.failed > 0) {
      auto it = last.find(name);
      if (it != last.end()) found[name] = it->second;
      // Once per outage, not every round: a DNS server down for an hour is one line.
      if (failing_.insert(name).second) {
        gateway_log().warn("discovery_failed backend={} error=\"{}\" kept={}", name, answer.why,
                           it != last.end() ? it->second.size() : 0);
      }
      continue;
    }
    if (failing_.erase(name) != 0) gateway_log().info("discovery_recovered backend={}", name);
    std::vector<config::HostPort>& addresses = found[name];
    addresses = std::move(answer.addresses);
    std::sort(addresses.begin(), addresses.end(),
              [](const auto& x, const auto& y) { return x.to_string() < y.to_string(); });
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
    // The records are the DNS server's: a name stands for at most max_members backends
    // (each is channels, probes, pools and metric series), the first in order.
    const size_t named = std::max(addresses.size(), answer.srv_targets);
    if (named > max_members) {
      if (addresses.size() > max_members) addresses.resize(max_members);
      if (auto [it, added] = truncated_.try_emplace(name, addresses.size());
          added || std::exchange(it->second, addresses.size()) != addresses.size()) {
        gateway_log().warn(
            "discovery_truncated backend={} named={} kept={} error=\"past discovery.max_members\"",
            name, named, addresses.size());
      }
    } else {
      truncated_.erase(name);
    }
  }
  min_ttl = round.min_ttl;
  return found;
}

config::Config expand_backends(const config::Config& config, const Discovery::Found& found) {
  config::Config out = config;
  out.backends.clear();
  for (const config::BackendConfig& b : config.backends) {
    if (by_host_name(b)) {
      config::BackendConfig one = b;
      auto it = found.find(b.name);
      if (it != found.end() && !it->second.empty()) {
        one.address = it->second.front();
        if (one.tls && one.tls->server_name.empty()) one.tls->server_name = b.address.host;
      }
      out.backends.push_back(std::move(one));
      continue;
    }
    if (b.srv.empty() && b.dns.port == 0) {
      out.backends.push_back(b);
      continue;
    }
    auto it = found.find(b.name);
    if (it == found.end()) continue;
    for (const config::HostPort& address : it->second) {
      config::BackendConfig member = b;
      member.dns = {};
      member.srv.clear();
      member.address = address;
      member.name = b.name + "/" + address.to_string();
      if (member.metrics_url) member.metrics_url->address.host = address.host;
      if (member.tls && member.tls->server_name.empty() && b.srv.empty()) {
        member.tls->server_name = b.dns.host;
      }
      out.backends.push_back(std::move(member));
    }
  }
  return out;
}

bool uses_discovery(const config::Config& config) {
  return std::any_of(config.backends.begin(), config.backends.end(),
                     [](const config::BackendConfig& b) {
                       return !b.srv.empty() || b.dns.port != 0 || by_host_name(b);
                     });
}

}  // namespace infergate::gateway
