// Scrapes each backend's own Triton metrics page (its optional metrics_url) on an
// interval, from the control io_context, with Boost.Beast: one GET per backend per
// interval, each bounded by a timeout and a body limit, never blocking the thread. Keeps
// the latest signals per backend for /metrics and /status, and Triton's pending count in
// the backend's routing::BackendRuntime for least-loaded's tie-break (-1 when stale).
// A failed scrape (connect, timeout, non-200, garbage) makes the backend's signals
// stale, logs one warn line until it recovers (then an info line), and touches nothing
// on the data plane. Control thread, except snapshot().
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "health/http_fetch.h"
#include "health/post_if_alive.h"
#include "health/triton_status.h"
#include "routing/fleet.h"

namespace infergate::health {

struct ScrapeOptions {
  std::chrono::nanoseconds interval = std::chrono::seconds(5);
  std::chrono::nanoseconds timeout = std::chrono::seconds(2);  // per scrape, all of it
  std::uint64_t body_limit_bytes = 8ull << 20;
  // A backend's signals are fresh while its last scrape succeeded less than this many
  // intervals ago.
  int fresh_intervals = 3;
};

class MetricsScraper {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;

  MetricsScraper(boost::asio::io_context& io, ScrapeOptions options, Clock clock);
  ~MetricsScraper();

  MetricsScraper(const MetricsScraper&) = delete;
  MetricsScraper& operator=(const MetricsScraper&) = delete;

  // The backends that have a metrics page, by backend name (from the config). A backend
  // whose endpoint changes starts afresh. Control thread.
  void set_endpoints(std::map<std::string, HttpEndpoint> endpoints);
  // The fleet as published: each backend in it that is not draining and has an
  // endpoint is scraped. Control thread.
  void set_fleet(std::shared_ptr<const routing::Fleet> fleet);
  void set_options(ScrapeOptions options);

  // Starts scraping (at once, then every interval); stop() cancels scrapes in flight and
  // forgets the routing signal. Control thread.
  void start();
  void stop();

  // Every scraped backend, in name order, with freshness as of now. Any thread.
  TritonSnapshot snapshot() const;

 private:
  struct Target;
  void reconcile();
  void tick();
  void scrape(Target& t);
  void on_fetch(std::uint32_t id, std::uint64_t generation, FetchResult result);
  // Sets the backend's triton_pending from its record (-1 unless fresh).
  void update_routing(const Target& t, TimePoint now) const;
  void forget(Target& t);
  void publish();
  std::chrono::nanoseconds max_age() const;

  boost::asio::io_context& io_;
  ScrapeOptions options_;
  Clock clock_;
  boost::asio::steady_timer timer_;
  std::map<std::string, HttpEndpoint> endpoints_;
  std::shared_ptr<const routing::Fleet> fleet_;
  std::map<std::uint32_t, std::unique_ptr<Target>> targets_;  // by backend id
  std::uint64_t next_generation_ = 0;
  bool running_ = false;

  // What snapshot() reads, copied from the targets after each change.
  struct Published {
    std::string backend;
    std::string url;
    TritonRecord record;
  };
  mutable std::mutex mu_;
  std::vector<Published> published_;
  std::chrono::nanoseconds published_max_age_{};
  // Last member: closed first. The timer's and the fetches' handlers complete on the
  // control thread and check it there, since a handler already queued when stop()
  // cancels still runs.
  Lifeline lifeline_;
};

}  // namespace infergate::health
