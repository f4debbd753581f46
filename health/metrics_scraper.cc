#include "health/metrics_scraper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "health/triton_metrics.h"

namespace infergate::health {

struct MetricsScraper::Target {
  std::uint32_t id = 0;
  std::string name;
  HttpEndpoint endpoint;
  std::shared_ptr<routing::BackendRuntime> runtime;
  TritonRecord record;
  std::shared_ptr<HttpFetch> fetch;  // the scrape in flight, if any
  std::uint64_t generation = 0;      // tells a stale fetch's answer from the current one
};

namespace {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::get("health");
    return l ? l : spdlog::default_logger();
  }();
  return *logger;
}

}  // namespace

MetricsScraper::MetricsScraper(boost::asio::io_context& io, ScrapeOptions options, Clock clock)
    : io_(io),
      options_(options),
      clock_(std::move(clock)),
      timer_(io),
      published_max_age_(max_age()),
      lifeline_(io.get_executor()) {}

MetricsScraper::~MetricsScraper() {
  lifeline_.close();
  stop();
}

std::chrono::nanoseconds MetricsScraper::max_age() const {
  return options_.interval * std::max(1, options_.fresh_intervals);
}

void MetricsScraper::set_endpoints(std::map<std::string, HttpEndpoint> endpoints) {
  endpoints_ = std::move(endpoints);
  reconcile();
}

void MetricsScraper::set_fleet(std::shared_ptr<const routing::Fleet> fleet) {
  fleet_ = std::move(fleet);
  reconcile();
}

void MetricsScraper::set_options(ScrapeOptions options) {
  const bool new_interval = options.interval != options_.interval;
  options_ = options;
  {
    std::lock_guard<std::mutex> lock(mu_);
    published_max_age_ = max_age();
  }
  if (running_ && new_interval) tick();  // rearms the timer with the new interval
}

void MetricsScraper::reconcile() {
  std::set<std::uint32_t> wanted;
  bool changed = false;
  if (fleet_) {
    for (const routing::BackendInfo& b : fleet_->backends()) {
      if (b.state == routing::BackendState::kDraining) continue;
      auto endpoint = endpoints_.find(b.name);
      if (endpoint == endpoints_.end()) continue;
      wanted.insert(b.id);
      auto it = targets_.find(b.id);
      if (it != targets_.end() && it->second->endpoint == endpoint->second) continue;
      if (it != targets_.end()) forget(*it->second);
      auto t = std::make_unique<Target>();
      t->id = b.id;
      t->name = b.name;
      t->endpoint = endpoint->second;
      t->runtime = b.runtime;
      t->generation = ++next_generation_;
      log().info("metrics_scrape_target backend={} url={}", t->name, t->endpoint.url());
      Target& added = *t;
      targets_[b.id] = std::move(t);
      changed = true;
      if (running_) scrape(added);
    }
  }
  for (auto it = targets_.begin(); it != targets_.end();) {
    if (wanted.count(it->first) != 0) {
      ++it;
      continue;
    }
    forget(*it->second);
    it = targets_.erase(it);
    changed = true;
  }
  if (changed) publish();
}

void MetricsScraper::forget(Target& t) {
  if (t.fetch) t.fetch->cancel();
  t.fetch.reset();
  if (t.runtime) t.runtime->triton_pending.store(-1, std::memory_order_relaxed);
}

void MetricsScraper::start() {
  running_ = true;
  tick();
}

void MetricsScraper::stop() {
  running_ = false;
  timer_.cancel();
  for (auto& [id, t] : targets_) forget(*t);
}

void MetricsScraper::tick() {
  if (!running_) return;
  const TimePoint now = clock_();
  for (auto& [id, t] : targets_) {
    update_routing(*t, now);  // a scrape that has not succeeded for too long goes stale
    scrape(*t);
  }
  timer_.expires_after(options_.interval);
  timer_.async_wait([this, link = lifeline_.link()](const boost::system::error_code& ec) {
    if (!ec && link.alive()) tick();
  });
}

void MetricsScraper::scrape(Target& t) {
  if (t.fetch) return;  // the last one is still going (its timeout ends it)
  t.fetch = HttpFetch::start(
      io_, t.endpoint, options_.timeout, options_.body_limit_bytes,
      [this, link = lifeline_.link(), id = t.id, generation = t.generation](FetchResult result) {
        if (link.alive()) on_fetch(id, generation, std::move(result));
      });
}

void MetricsScraper::on_fetch(std::uint32_t id, std::uint64_t generation, FetchResult result) {
  auto it = targets_.find(id);
  if (it == targets_.end() || it->second->generation != generation) return;
  Target& t = *it->second;
  t.fetch.reset();
  std::string error;
  TritonSignals signals;
  if (!result.ok) {
    error = std::move(result.error);
  } else if (result.status != 200) {
    error = "HTTP status " + std::to_string(result.status);
  } else {
    TritonParseResult parsed = parse_triton_metrics(result.body);
    if (!parsed.ok()) {
      error = std::move(parsed.error);
    } else {
      signals = parsed.signals;
      if (!parsed.problems.empty()) {
        log().debug("metrics_scrape_problems backend={} bad_lines={} ignored={} first=\"{}\"",
                    t.name, parsed.bad_lines, parsed.ignored, parsed.problems.front());
      }
    }
  }
  const TimePoint now = clock_();
  const TritonRecord::Change change =
      error.empty() ? t.record.on_success(signals, now) : t.record.on_failure(error, now);
  if (change == TritonRecord::Change::kFailing) {
    log().warn("metrics_scrape_failed backend={} url={} error=\"{}\"", t.name, t.endpoint.url(),
               error);
  } else if (change == TritonRecord::Change::kRecovered) {
    log().info("metrics_scrape_recovered backend={} url={}", t.name, t.endpoint.url());
  }
  update_routing(t, now);
  publish();
}

void MetricsScraper::update_routing(const Target& t, TimePoint now) const {
  if (!t.runtime) return;
  t.runtime->triton_pending.store(t.record.routing_pending(now, max_age()),
                                  std::memory_order_relaxed);
}

void MetricsScraper::publish() {
  std::vector<Published> next;
  next.reserve(targets_.size());
  for (const auto& [id, t] : targets_) next.push_back({t->name, t->endpoint.url(), t->record});
  std::sort(next.begin(), next.end(),
            [](const Published& a, const Published& b) { return a.backend < b.backend; });
  std::lock_guard<std::mutex> lock(mu_);
  published_ = std::move(next);
}

TritonSnapshot MetricsScraper::snapshot() const {
  std::vector<Published> published;
  std::chrono::nanoseconds max_age{};
  {
    std::lock_guard<std::mutex> lock(mu_);
    published = published_;
    max_age = published_max_age_;
  }
  const TimePoint now = clock_();
  TritonSnapshot out;
  out.reserve(published.size());
  for (const Published& p : published) {
    TritonStatus s = p.record.status(now, max_age);
    s.backend = p.backend;
    s.url = p.url;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace infergate::health
