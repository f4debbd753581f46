// perf_analyzer-style level ranges: "START[:END[:STEP]]" for --concurrency-range and
// --request-rate-range. Pure functions; no exceptions.
#pragma once

#include <string_view>
#include <vector>

#include "config/units.h"

namespace infergate::bench {

// The most levels one range may expand to; more is almost surely a typo.
inline constexpr int kMaxLevels = 1000;

// Expands the range into its levels, START first. END defaults to START, STEP to 1.
// integral: concurrency (whole numbers >= 1); otherwise request rates (> 0, fractions
// allowed). Errors name the offending part.
config::Parsed<std::vector<double>> parse_levels(std::string_view text, bool integral);

}  // namespace infergate::bench
