#include "benchmarks/bench/core/level_range.h"

#include <charconv>
#include <cmath>
#include <string>

namespace infergate::bench {
namespace {

// Parses one number of the range; returns an error message or "".
std::string parse_part(std::string_view part, std::string_view what, bool integral, double& out) {
  if (part.empty()) return std::string(what) + " is empty";
  const char* end = part.data() + part.size();
  auto [ptr, ec] = std::from_chars(part.data(), end, out);
  if (ec != std::errc() || ptr != end || !std::isfinite(out)) {
    return std::string(what) + " '" + std::string(part) + "' is not a number";
  }
  if (integral && out != std::floor(out)) {
    return std::string(what) + " '" + std::string(part) + "' must be a whole number";
  }
  if (out <= 0) return std::string(what) + " must be greater than 0";
  return "";
}

}  // namespace

config::Parsed<std::vector<double>> parse_levels(std::string_view text, bool integral) {
  config::Parsed<std::vector<double>> out;
  std::string_view parts[3];
  int n = 0;
  for (std::string_view rest = text;; ++n) {
    size_t colon = rest.find(':');
    if (n == 2 && colon != std::string_view::npos) {
      out.error = "range '" + std::string(text) + "' has more than START:END:STEP";
      return out;
    }
    parts[n] = rest.substr(0, colon);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  double start = 0;
  double end = 0;
  double step = 1;
  std::string error = parse_part(parts[0], "START", integral, start);
  if (error.empty() && n >= 1) error = parse_part(parts[1], "END", integral, end);
  if (error.empty() && n >= 2) error = parse_part(parts[2], "STEP", integral, step);
  if (n == 0) end = start;
  if (error.empty() && end < start) error = "END must not be below START";
  if (!error.empty()) {
    out.error = "range '" + std::string(text) + "': " + error;
    return out;
  }
  double count = std::floor((end - start) / step + 1e-9) + 1;
  if (count > kMaxLevels) {
    out.error =
        "range '" + std::string(text) + "' has more than " + std::to_string(kMaxLevels) + " levels";
    return out;
  }
  std::vector<double> levels;
  for (int i = 0; i < static_cast<int>(count); ++i) levels.push_back(start + i * step);
  out.value = std::move(levels);
  return out;
}

}  // namespace infergate::bench
