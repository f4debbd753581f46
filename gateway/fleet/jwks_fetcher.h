// Keeps JWT issuers' keys fresh from their jwks_url: each is fetched at once, again every
// auth.jwks_refresh (every 30 s, at most that, while fetches fail), on the control thread
// and within auth.jwks_timeout, and handed to the validator. A set that does not load
// leaves the old keys in place; either way the outcome is logged.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "auth/jwt_validator.h"
#include "config/config.h"
#include "health/http_fetch.h"

namespace infergate::gateway {

class JwksFetcher {
 public:
  // Starts fetching every issuer of `config` that has a jwks_url. Control thread.
  JwksFetcher(boost::asio::io_context& control, std::shared_ptr<auth::JwtValidator> validator,
              const config::AuthConfig& config);
  ~JwksFetcher();  // stops: nothing in flight reaches the validator after this
  JwksFetcher(const JwksFetcher&) = delete;
  JwksFetcher& operator=(const JwksFetcher&) = delete;

  // The most a key set may weigh.
  static constexpr std::uint64_t kMaxJwksBytes = 1 << 20;

 private:
  struct Source {
    std::string issuer;
    std::string url;
    health::HttpEndpoint endpoint;
    boost::asio::steady_timer timer;
    std::shared_ptr<health::HttpFetch> fetch;
  };

  void fetch(Source& source);
  void schedule(Source& source, std::chrono::nanoseconds after);

  boost::asio::io_context& control_;
  std::shared_ptr<auth::JwtValidator> validator_;
  std::chrono::nanoseconds refresh_;
  std::chrono::nanoseconds timeout_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace infergate::gateway
