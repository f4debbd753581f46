#include "gateway/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace infergate::gateway {
namespace {

std::shared_ptr<spdlog::logger> make(const std::string& name,
                                     const std::shared_ptr<spdlog::sinks::sink>& sink) {
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %n %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::register_logger(logger);
  return logger;
}

std::shared_ptr<spdlog::logger>& gateway_logger() {
  static std::shared_ptr<spdlog::logger> l = spdlog::default_logger();
  return l;
}
std::shared_ptr<spdlog::logger>& config_logger() {
  static std::shared_ptr<spdlog::logger> l = spdlog::default_logger();
  return l;
}
std::shared_ptr<spdlog::logger>& access_logger() {
  static std::shared_ptr<spdlog::logger> l = spdlog::default_logger();
  return l;
}

}  // namespace

bool setup_logging(const std::string& level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::drop_all();
  gateway_logger() = make("gateway", sink);
  config_logger() = make("config", sink);
  make("health", sink);  // used by health/, found by name
  access_logger() = make("access", sink);
  set_log_level(level);
  return true;
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    // The access log is switched by its own setting, not by log_level.
    l->set_level(l->name() == "access" ? spdlog::level::info : spdlog::level::from_str(level));
  });
}

spdlog::logger& gateway_log() { return *gateway_logger(); }
spdlog::logger& config_log() { return *config_logger(); }
spdlog::logger& access_log() { return *access_logger(); }

}  // namespace infergate::gateway
