// spdlog setup: one logger per module, "event key=value" lines on stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace infergate::gateway {

// Creates the module loggers at `level` ("info", "debug", ...). Call once, early.
// Returns false if the level is unknown.
bool setup_logging(const std::string& level);

// Changes every module logger's level.
void set_log_level(const std::string& level);

// The module loggers; valid after setup_logging (a default logger before).
spdlog::logger& gateway_log();
spdlog::logger& config_log();
// One line per finished request, when the access log is on (off by default).
spdlog::logger& access_log();

}  // namespace infergate::gateway
