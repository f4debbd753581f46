#include "gateway/fleet/jwks_fetcher.h"

#include <algorithm>

#include "config/host_port.h"
#include "gateway/logging.h"

namespace infergate::gateway {
namespace {

constexpr std::chrono::nanoseconds kRetryAfterFailure = std::chrono::seconds(30);

}  // namespace

JwksFetcher::JwksFetcher(boost::asio::io_context& control,
                         std::shared_ptr<auth::JwtValidator> validator,
                         const config::AuthConfig& config)
    : control_(control),
      validator_(std::move(validator)),
      refresh_(config.jwks_refresh),
      timeout_(config.jwks_timeout) {
  for (const config::JwtIssuerConfig& issuer : config.issuers) {
    if (issuer.jwks_url.empty()) continue;
    config::Parsed<config::HttpUrl> url = config::parse_http_url(issuer.jwks_url);
    if (!url.ok()) continue;  // the loader refused it already
    sources_.push_back(std::make_unique<Source>(Source{.issuer = issuer.issuer,
                                                       .url = issuer.jwks_url,
                                                       .endpoint = {.host = url.value->address.host,
                                                                    .port = url.value->address.port,
                                                                    .target = url.value->path,
                                                                    .tls = url.value->tls,
                                                                    .ca_file = issuer.jwks_ca},
                                                       .timer = boost::asio::steady_timer(control_),
                                                       .fetch = nullptr}));
  }
  for (auto& source : sources_) fetch(*source);
}

JwksFetcher::~JwksFetcher() {
  *alive_ = false;
  for (auto& source : sources_) {
    source->timer.cancel();
    if (source->fetch) source->fetch->cancel();
  }
}

void JwksFetcher::fetch(Source& source) {
  source.fetch = health::HttpFetch::start(
      control_, source.endpoint, timeout_, kMaxJwksBytes,
      [this, alive = alive_, &source](health::FetchResult result) {
        if (!*alive) return;
        source.fetch.reset();
        std::string error = result.error;
        if (result.ok && result.status != 200) {
          error = "HTTP " + std::to_string(result.status);
        }
        if (error.empty() && !validator_->set_keys(source.issuer, result.body, error)) {
          error = "the key set does not load: " + error;
        }
        if (error.empty()) {
          gateway_log().info("jwks_fetched issuer={} url={}", source.issuer, source.url);
          schedule(source, refresh_);
        } else {
          gateway_log().warn(
              "jwks_fetch_failed issuer={} url={} error=\"{}\" keys=\"{}\"", source.issuer,
              source.url, error,
              validator_->has_keys(source.issuer) ? "the last ones stay" : "none yet");
          schedule(source, std::min(refresh_, kRetryAfterFailure));
        }
      });
}

void JwksFetcher::schedule(Source& source, std::chrono::nanoseconds after) {
  source.timer.expires_after(after);
  source.timer.async_wait([this, alive = alive_, &source](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    fetch(source);
  });
}

}  // namespace infergate::gateway
