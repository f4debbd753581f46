#include "gateway/fleet/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <random>

#include "gateway/logging.h"

namespace infergate::gateway {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Redis's clock, in milliseconds, inside a script (every replica reads the same clock).
constexpr const char* kNow = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// KEYS[1] the job leases, KEYS[2] the group's (ARGV[4] > 0: its cap).
// ARGV: job, lease ms, max_jobs (0: none), the group's max_jobs (0: none), key expiry ms.
// Returns 0 admitted (or renewed), 1 max_jobs full, 2 the group's max_jobs full.
constexpr const char* kAdmitJob = R"lua(
local job, lease, max, gmax, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if gmax > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
if not redis.call('ZSCORE', KEYS[1], job) then
  if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 1 end
  if gmax > 0 and redis.call('ZCARD', KEYS[2]) >= gmax then return 2 end
end
redis.call('ZADD', KEYS[1], now + lease, job)
redis.call('PEXPIRE', KEYS[1], keep)
if gmax > 0 then
  redis.call('ZADD', KEYS[2], now + lease, job)
  redis.call('PEXPIRE', KEYS[2], keep)
end
return 0
)lua";

// KEYS[1] the job leases, KEYS[2..] the groups' leases.
// ARGV: lease ms, key expiry ms, max_jobs (0: none), then per job: the job, the index of
// its group's key (0: none) and that group's max_jobs. A lease still there is extended; one
// that lapsed (Redis restarted, or answered late) is taken again if the caps allow. Returns
// the jobs that found no room: this replica stops counting them as active.
constexpr const char* kRenewJobs = R"lua(
local lease, keep, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #KEYS do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now) end
local over = {}
for i = 4, #ARGV, 3 do
  local job, g, gmax = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if redis.call('ZSCORE', KEYS[1], job) then
    redis.call('ZADD', KEYS[1], 'GT', now + lease, job)
    if g > 0 then redis.call('ZADD', KEYS[g], 'GT', now + lease, job) end
  elseif (max > 0 and redis.call('ZCARD', KEYS[1]) >= max) or
         (g > 0 and gmax > 0 and redis.call('ZCARD', KEYS[g]) >= gmax) then
    over[#over + 1] = job
  else
    redis.call('ZADD', KEYS[1], now + lease, job)
    if g > 0 then redis.call('ZADD', KEYS[g], now + lease, job) end
  end
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], keep) end
return over
)lua";

// KEYS: the live replicas (member: id, score: when it stops counting), the shares and the
// demands (hashes: id -> "a b c"). ARGV: id, lease ms, key expiry ms, then per shared
// limit (max_inflight, max_bytes_in_flight, link_bandwidth): the limit (0: not set), this
// replica's demand, what it has in use, and a cap on its share (-1: none).
// Every live replica's target is its part of the limit by demand (each weighs one more,
// largest remainders first); its share is its target within what the others do not hold,
// and never below what it has in use (up to its old share), so the shares never add up
// to more than the limit. Returns {live replicas, share 1, share 2, share 3, rank}.
constexpr const char* kTakeShares = R"lua(
local id, lease, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + 2 * lease, id)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
  redis.call('HDEL', KEYS[3], gone)
end
local limit, demand, held, cap = {}, {}, {}, {}
for k = 1, 3 do
  limit[k] = tonumber(ARGV[3 + 4 * k - 3])
  demand[k] = tonumber(ARGV[3 + 4 * k - 2])
  held[k] = tonumber(ARGV[3 + 4 * k - 1])
  cap[k] = tonumber(ARGV[3 + 4 * k])
end
redis.call('HSET', KEYS[3], id, table.concat(demand, ' '))
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(live)
local function numbers(s)
  local out = {0, 0, 0}
  if s then
    local i = 1
    for w in string.gmatch(s, '%S+') do out[i] = tonumber(w) or 0; i = i + 1 end
  end
  return out
end
local demands, shares, me = {}, {}, 1
for i, r in ipairs(live) do
  demands[i] = numbers(redis.call('HGET', KEYS[3], r))
  shares[i] = numbers(redis.call('HGET', KEYS[2], r))
  if r == id then me = i end
end
local mine = {0, 0, 0}
for k = 1, 3 do
  if limit[k] > 0 then
    local total = 0
    for i = 1, #live do total = total + demands[i][k] + 1 end
    local quota, part, sum = {}, {}, 0
    for i = 1, #live do
      quota[i] = limit[k] * (demands[i][k] + 1) / total
      part[i] = math.floor(quota[i])
      sum = sum + part[i]
    end
    local order = {}
    for i = 1, #live do order[i] = i end
    table.sort(order, function(a, b)
      local fa, fb = quota[a] - part[a], quota[b] - part[b]
      if fa ~= fb then return fa > fb end
      return a < b
    end)
    for j = 1, math.min(limit[k] - sum, #live) do part[order[j]] = part[order[j]] + 1 end
    local others = 0
    for i = 1, #live do if i ~= me then others = others + shares[i][k] end end
    local free = math.max(0, limit[k] - others)
    local want = part[me]
    if cap[k] >= 0 then want = math.min(want, cap[k]) end
    mine[k] = math.max(math.min(want, free), math.min(held[k], shares[me][k], free))
  end
end
redis.call('HSET', KEYS[2], id, string.format('%d %d %d', mine[1], mine[2], mine[3]))
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], keep) end
return {#live, mine[1], mine[2], mine[3], me - 1}
)lua";

std::string script(const char* body) { return std::string(kNow) + body; }

std::string replica_id() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::random_device random;
  return std::string(host) + "/" + std::to_string(::getpid()) + "/" +
         std::to_string(random() % 1000000);
}

long long ms(std::chrono::nanoseconds d) { return duration_cast<milliseconds>(d).count(); }

}  // namespace

std::uint64_t ClusterLimits::split(std::uint64_t total, size_t n, size_t rank) {
  if (n == 0) n = 1;
  return total / n + (rank < total % n ? 1 : 0);
}

ClusterLimits::ClusterLimits(boost::asio::io_context& control, std::shared_ptr<AdmissionGate> gate)
    : control_(control),
      gate_(std::move(gate)),
      timer_(control),
      id_(replica_id()),
      alive_(std::make_shared<std::atomic<bool>>(true)) {
  snapshot_.replica = id_;
}

ClusterLimits::~ClusterLimits() {
  alive_->store(false);
  timer_.cancel();
  gate_->set_job_ask(nullptr);
  redis_.reset();
  answer_asks_here();
  gate_->leave_cluster();
}

void ClusterLimits::answer_asks_here() {
  auto asks = std::move(asks_);
  asks_.clear();
  for (auto& [id, answer] : asks) answer(std::nullopt);
}

bool ClusterLimits::jobs_capped() const {
  if (limits_.max_jobs != 0) return true;
  return std::any_of(limits_.groups.begin(), limits_.groups.end(),
                     [](const routing::GroupLimits& g) { return g.max_jobs != 0; });
}

std::string ClusterLimits::key(const std::string& suffix) const {
  return "infergate:{" + config_.name + "}:" + suffix;
}

void ClusterLimits::configure(const config::ClusterConfig& cluster,
                              const routing::AdmissionLimits& limits) {
  const bool reconnect = !configured_ || cluster.redis != config_.redis ||
                         cluster.ca != config_.ca || cluster.timeout != config_.timeout ||
                         cluster.name != config_.name;
  config_ = cluster;
  limits_ = limits;
  if (reconnect) {
    RedisClient::Options options{.url = cluster.redis,
                                 .ca_file = cluster.ca,
                                 .timeout = cluster.timeout,
                                 .retry_min = std::min<std::chrono::nanoseconds>(
                                     cluster.lease, std::chrono::milliseconds(100))};
    retry_max_ = options.retry_max;
    redis_ = std::make_unique<RedisClient>(control_, options);  // drops the old one's answers
    answer_asks_here();
    in_flight_ = false;
    renewing_ = false;
    connected_ = false;
    if (configured_) {
      cap_next_ = true;
      expected_back_ = split_count();
    }
  }
  // New jobs go to Redis only while a job cap is set.
  if (jobs_capped()) {
    gate_->set_job_ask(
        [control = &control_, self = this, alive = alive_](
            const std::string& job, const std::string& group, AdmissionGate::JobAnswer answer) {
          // From a worker: decided on the control thread (which outlives this object).
          boost::asio::post(*control, [self, alive, job, group, answer = std::move(answer)] {
            if (!alive->load()) return answer(std::nullopt);
            self->ask_job(job, group, std::move(answer));
          });
        });
  } else {
    gate_->set_job_ask(nullptr);
  }
  if (!configured_) {
    configured_ = true;
    // Until Redis has answered once, this replica holds no share (requests queue).
    routing::AdmissionLimits closed = limits_;
    closed.closed = limits_.max_inflight != 0 || limits_.max_bytes_in_flight != 0 ||
                    limits_.link_bytes_per_second != 0;
    closed.max_jobs = 0;
    for (routing::GroupLimits& g : closed.groups) g.max_jobs = 0;
    gate_->set_shares(closed);
    round();
    return;
  }
  apply(connected_);
}

ClusterLimits::Snapshot ClusterLimits::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

void ClusterLimits::ask_job(const std::string& job, const std::string& group,
                            AdmissionGate::JobAnswer answer) {
  // Redis is known to be away: this replica decides (its split of the caps).
  if (!connected_ && ever_connected_) return answer(std::nullopt);
  if (!connected_ && !ever_connected_ && !redis_->last_error().empty()) {
    return answer(std::nullopt);
  }
  std::uint32_t group_max = 0;
  for (const routing::GroupLimits& g : limits_.groups) {
    if (g.name == group) group_max = g.max_jobs;
  }
  const long long keep = ms(config_.lease) * 20 + 60000;
  const std::uint64_t id = ++next_ask_;
  asks_.emplace(id, std::move(answer));
  redis_->command(
      {"EVAL", script(kAdmitJob), "2", key("jobs"), key("jobs:" + group), job,
       std::to_string(ms(config_.lease)), std::to_string(limits_.max_jobs),
       std::to_string(group_max), std::to_string(keep)},
      [this, alive = alive_, id](const RedisValue* reply, const std::string& error) {
        if (!alive->load()) return;
        auto it = asks_.find(id);
        if (it == asks_.end()) return;
        AdmissionGate::JobAnswer answer = std::move(it->second);
        asks_.erase(it);
        if (reply == nullptr || reply->type != RedisValue::Type::kInteger) {
          // Redis could not tell: the split caps apply, and this replica decides.
          fall_back(reply == nullptr ? error : "an unexpected answer to the job script");
          return answer(std::nullopt);
        }
        answer(reply->integer == 0   ? routing::Limit::kNone
               : reply->integer == 1 ? routing::Limit::kMaxJobs
                                     : routing::Limit::kGroupJobs);
      });
}

void ClusterLimits::round() {
  const auto period = std::max<std::chrono::nanoseconds>(config_.lease / 2, milliseconds(10));
  timer_.expires_after(period);
  timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !alive->load()) return;
    round();
  });
  renew_jobs();
  if (in_flight_) return;  // the last shares have not been answered (their timeout will come)
  const Clock::time_point now = Clock::now();
  const AdmissionGate::Demand d = gate_->demand();
  const double elapsed =
      last_round_ == Clock::time_point{}
          ? std::chrono::duration<double>(period).count()
          : std::max(1e-3, std::chrono::duration<double>(now - last_round_).count());
  last_round_ = now;
  const std::uint64_t admitted = d.admitted_bytes_total - admitted_at_last_round_;
  admitted_at_last_round_ = d.admitted_bytes_total;
  const double lease_s = std::chrono::duration<double>(config_.lease).count();
  const auto rate_demand = static_cast<std::uint64_t>(
      static_cast<double>(admitted) / elapsed + static_cast<double>(d.queued_bytes) / lease_s);
  const long long keep = ms(config_.lease) * 20 + 60000;
  const std::array<std::uint64_t, 3> limit = {limits_.max_inflight, limits_.max_bytes_in_flight,
                                              limits_.link_bytes_per_second};
  const std::array<std::uint64_t, 3> demand = {d.inflight + d.queued,
                                               d.bytes_in_flight + d.queued_bytes, rate_demand};
  const std::array<std::uint64_t, 3> held = {d.inflight, d.bytes_in_flight, 0};
  // The window after a reconnect ends once as many replicas have reported as the split
  // counted, or at its bound.
  if (!cap_next_ && expected_back_ != 0 && (replicas_ >= expected_back_ || now >= cap_bound_)) {
    expected_back_ = 0;
  }
  const bool cap = cap_next_ || now < cap_until_ || expected_back_ != 0;
  std::vector<std::string> args = {"EVAL",
                                   script(kTakeShares),
                                   "3",
                                   key("replicas"),
                                   key("shares"),
                                   key("demand"),
                                   id_,
                                   std::to_string(ms(config_.lease)),
                                   std::to_string(keep)};
  for (size_t k = 0; k < 3; ++k) {
    args.push_back(std::to_string(limit[k]));
    args.push_back(std::to_string(demand[k]));
    args.push_back(std::to_string(held[k]));
    args.push_back(cap ? std::to_string(shares_[k]) : "-1");
  }
  in_flight_ = true;
  redis_->command(std::move(args),
                  [this, alive = alive_](const RedisValue* reply, const std::string& error) {
                    if (!alive->load()) return;
                    on_shares(reply, error);
                  });
}

void ClusterLimits::renew_jobs() {
  // The leases of this replica's active jobs, every round, whatever the shares do; one
  // renewal out at a time (a slow Redis fails over by its timeout).
  if (!jobs_capped() || renewing_ || (!connected_ && ever_connected_)) return;
  const auto jobs = gate_->active_jobs();
  if (jobs.empty()) return;
  const long long keep = ms(config_.lease) * 20 + 60000;
  std::vector<std::string> args = {"EVAL", script(kRenewJobs), "", key("jobs")};
  std::vector<std::string> groups;
  std::vector<std::string> argv = {std::to_string(ms(config_.lease)), std::to_string(keep),
                                   std::to_string(limits_.max_jobs)};
  for (const auto& [job, group] : jobs) {
    size_t index = 0;
    std::uint32_t group_max = 0;
    for (const routing::GroupLimits& g : limits_.groups) {
      if (g.name == group) group_max = g.max_jobs;
    }
    if (group_max != 0) {
      auto it = std::find(groups.begin(), groups.end(), group);
      index = static_cast<size_t>(it - groups.begin()) + 2;
      if (it == groups.end()) groups.push_back(group);
    }
    argv.push_back(job);
    argv.push_back(std::to_string(index));
    argv.push_back(std::to_string(group_max));
  }
  args[2] = std::to_string(1 + groups.size());
  for (const std::string& g : groups) args.push_back(key("jobs:" + g));
  args.insert(args.end(), argv.begin(), argv.end());
  renewing_ = true;
  redis_->command(std::move(args),
                  [this, alive = alive_](const RedisValue* reply, const std::string&) {
                    if (!alive->load()) return;
                    renewing_ = false;
                    if (reply == nullptr || reply->type != RedisValue::Type::kArray) return;
                    // Lapsed leases that found the cap full: those jobs ask again.
                    for (const RedisValue& job : reply->elements) gate_->forget_job(job.text);
                  });
}

void ClusterLimits::on_shares(const RedisValue* reply, const std::string& error) {
  in_flight_ = false;
  if (reply == nullptr) return fall_back(error);
  if (reply->is_error()) return fall_back("Redis: " + reply->text);
  if (reply->type != RedisValue::Type::kArray || reply->elements.size() != 5) {
    return fall_back("an unexpected answer to the shares script");
  }
  for (const RedisValue& v : reply->elements) {
    if (v.type != RedisValue::Type::kInteger || v.integer < 0) {
      return fall_back("an unexpected answer to the shares script");
    }
  }
  replicas_ = static_cast<size_t>(reply->elements[0].integer);
  for (size_t k = 0; k < 3; ++k) {
    shares_[k] = static_cast<std::uint64_t>(reply->elements[k + 1].integer);
  }
  rank_ = static_cast<size_t>(reply->elements[4].integer);
  last_shares_ = shares_;
  if (cap_next_) {
    // The others reconnect on their own backoff: the last may fail once more (a timeout),
    // wait its longest retry, connect and answer (two timeouts), and report at its next
    // round (up to a lease, a round being skipped while one is out).
    cap_until_ = Clock::now() + 2 * config_.lease;
    cap_bound_ = cap_until_ + retry_max_ + config_.lease + 3 * config_.timeout;
  }
  cap_next_ = false;
  if (!connected_) {
    gateway_log().info("cluster_connected redis={} name={} replicas={} replica={}",
                       config_.redis.to_string(), config_.name, replicas_, id_);
  }
  connected_ = ever_connected_ = true;
  fallback_logged_ = false;
  apply(true);
}

size_t ClusterLimits::split_count() const {
  const size_t known = replicas_ != 0 ? replicas_ : static_cast<size_t>(config_.expected_replicas);
  return std::max(known, expected_back_);
}

void ClusterLimits::fall_back(const std::string& why) {
  if (connected_) {
    cautious_until_ = Clock::now() + std::chrono::seconds(1) + 2 * config_.lease;
  }
  connected_ = false;
  cap_next_ = true;
  // A replica that loses Redis again before the others are back still counts them.
  expected_back_ = split_count();
  if (!fallback_logged_) {
    fallback_logged_ = true;
    gateway_log().warn(
        "cluster_fallback redis={} reason=\"{}\" replicas={} detail=\"every limit split evenly "
        "over the last known replicas until Redis answers\"",
        config_.redis.to_string(), why, split_count());
  }
  apply(false);
}

void ClusterLimits::apply(bool from_shares) {
  routing::AdmissionLimits mine = limits_;
  const size_t n = split_count();
  const size_t rank = replicas_ != 0 ? rank_ : 0;
  std::array<std::uint64_t, 3> now{};
  const std::array<std::uint64_t, 3> limit = {limits_.max_inflight, limits_.max_bytes_in_flight,
                                              limits_.link_bytes_per_second};
  for (size_t k = 0; k < 3; ++k) {
    if (limit[k] == 0) {
      now[k] = 0;
    } else if (from_shares) {
      now[k] = shares_[k];
    } else {
      now[k] = split(limit[k], n, rank);
      if (Clock::now() < cautious_until_) now[k] = std::min(now[k], last_shares_[k]);
    }
    if (!from_shares) shares_[k] = now[k];
  }
  mine.closed = false;
  for (size_t k = 0; k < 3; ++k) mine.closed |= limit[k] != 0 && now[k] == 0;
  mine.max_inflight = static_cast<std::uint32_t>(now[0]);
  mine.max_bytes_in_flight = now[1];
  mine.link_bytes_per_second = now[2];
  if (limits_.link_burst_bytes != 0 && limit[2] != 0) {
    mine.link_burst_bytes = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(static_cast<double>(limits_.link_burst_bytes) *
                                      static_cast<double>(now[2]) / static_cast<double>(limit[2])));
  }
  if (from_shares) {
    mine.max_jobs = 0;  // Redis decides new jobs
  } else if (limits_.max_jobs != 0) {
    mine.max_jobs =
        static_cast<std::uint32_t>(std::max<std::uint64_t>(1, split(limits_.max_jobs, n, rank)));
  }
  for (routing::GroupLimits& g : mine.groups) {
    if (from_shares) {
      g.max_jobs = 0;
    } else if (g.max_jobs != 0) {
      g.max_jobs =
          static_cast<std::uint32_t>(std::max<std::uint64_t>(1, split(g.max_jobs, n, rank)));
    }
    if (g.max_inflight != 0) {
      g.max_inflight =
          static_cast<std::uint32_t>(std::max<std::uint64_t>(1, split(g.max_inflight, n, rank)));
    }
  }
  gate_->set_shares(mine);
  std::lock_guard lock(snapshot_mutex_);
  snapshot_.connected = from_shares;
  snapshot_.replicas = n;
  snapshot_.shares = now;
}

}  // namespace infergate::gateway
