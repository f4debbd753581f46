// Loads and validates an infergate config. Never throws; reports every problem found.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/problem.h"

namespace infergate::config {

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when problems is non-empty
  std::vector<Problem> problems;

  bool ok() const { return config != nullptr; }
};

// Reads and validates the YAML file at `path`.
LoadResult load_config_file(const std::string& path);

// Validates YAML text; `source` names it in problems (a path or "<string>").
LoadResult load_config_string(std::string_view yaml, const std::string& source);

}  // namespace infergate::config
