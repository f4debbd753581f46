// A problem found in a config file, located so a person can go straight to it.
#pragma once

#include <string>

namespace infergate::config {

struct Problem {
  std::string yaml_path;  // "backends[1].address"; empty for the document itself
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  int column = 0;
  std::string message;

  // "file:line:column: yaml_path: message"
  std::string to_string() const;
};

}  // namespace infergate::config
