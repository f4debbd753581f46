// Backends given by `dns` (every A and AAAA record of a name) or `srv` (SRV records),
// found with c-ares on a thread of its own, so that no data-plane or control loop ever
// waits on DNS. Every discovery.interval (sooner when the records' TTL is shorter) the
// names are asked again; when what they say changes, the new sets are posted to the
// control io_context, where the fleet takes them as a reload takes a new backend list:
// an address that appears is probed and joins with slow start, one that disappears
// drains. A name that cannot be resolved (timeout, server failure) keeps its last set:
// a DNS outage does not empty the fleet; a name that does not exist (or has no records)
// has an empty set.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"

namespace infergate::gateway {

class Discovery {
 public:
  // Per backend entry name: the addresses (ip:port) it stands for now.
  using Found = std::map<std::string, std::vector<config::HostPort>>;
  using OnChange = std::function<void(const Found&)>;

  // `on_change` runs on `control`'s thread.
  Discovery(boost::asio::io_context& control, OnChange on_change);
  ~Discovery();  // stops the thread; nothing is posted after it returns
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Which entries to resolve, how often, and which servers to ask (a reload). Any thread.
  void configure(const config::Config& config);
  // Ask again now (a connection to a discovered address failed). Any thread.
  void resolve_now();
  // At start, before the fleet exists: one round on the calling thread (within
  // discovery.timeout), so that the fleet starts with the addresses; the thread goes on
  // from there.
  Found first_round(const config::Config& config);

  // The floor of the re-resolution period (records with a TTL of 0 are asked this often).
  static constexpr std::chrono::milliseconds kMinPeriod{250};

 private:
  struct Entry {
    std::string name;
    std::string host;        // dns (or address with a host name): the name asked
    std::uint16_t port = 0;  // dns: the port every address gets
    std::string srv;         // srv: the name asked for SRV
  };
  static std::vector<Entry> entries_of(const config::Config& config);
  struct Round;

  void run();
  // One round of questions: every entry's addresses, at most `max_members` each (entries
  // that failed keep `last`'s), and the shortest TTL seen (seconds; -1: none).
  Found resolve(const std::vector<Entry>& entries, const std::vector<config::HostPort>& servers,
                std::chrono::nanoseconds timeout, size_t max_members, const Found& last,
                int& min_ttl);

  boost::asio::io_context& control_;
  OnChange on_change_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // control thread only

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool again_ = false;  // configure() or resolve_now() since the round began
  Found last_;          // what the latest round found
  // Entries whose last round failed (logged once per outage). Only resolve() touches it,
  // on one thread at a time (first_round before the thread has entries, then the thread).
  std::set<std::string> failing_;
  // Entries past max_members, and how many members each kept (logged when that changes).
  std::map<std::string, size_t> truncated_;
  std::vector<Entry> entries_;
  std::vector<config::HostPort> servers_;
  std::chrono::nanoseconds interval_ = std::chrono::seconds(5);
  std::chrono::nanoseconds timeout_ = std::chrono::seconds(2);
  size_t max_members_ = 256;
  std::thread thread_;
};

// `config` with each dns or srv entry replaced by one entry per address `found` for it,
// named "NAME/ip:port", its settings copied (a metrics_url is scraped on the member's
// address; TLS checks the name asked for, unless server_name says otherwise). An entry
// whose address is a host name gets the first address found for it (same name; TLS
// checks the host name); until one is found it stays as written.
config::Config expand_backends(const config::Config& config, const Discovery::Found& found);

// True if any backend entry is found through DNS (dns, srv, or an address by host name).
bool uses_discovery(const config::Config& config);

}  // namespace infergate::gateway
