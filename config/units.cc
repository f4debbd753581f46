#include "config/units.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace infergate::config {
namespace {

struct Unit {
  std::string_view suffix;
  double scale;  // how many base units (ns, bytes, bytes/s) one of this unit is
};

constexpr std::array kDurationUnits{
    Unit{"ns", 1.0}, Unit{"us", 1e3}, Unit{"\xC2\xB5s", 1e3},  // µs
    Unit{"ms", 1e6}, Unit{"s", 1e9},  Unit{"min", 60e9},      Unit{"m", 60e9}, Unit{"h", 3600e9},
};

constexpr std::array kByteUnits{
    Unit{"B", 1.0},
    Unit{"KB", 1e3},
    Unit{"kB", 1e3},
    Unit{"MB", 1e6},
    Unit{"GB", 1e9},
    Unit{"TB", 1e12},
    Unit{"KiB", 1024.0},
    Unit{"MiB", 1024.0 * 1024},
    Unit{"GiB", 1024.0 * 1024 * 1024},
    Unit{"TiB", 1024.0 * 1024 * 1024 * 1024},
};

constexpr std::array kRateUnits{
    Unit{"bps", 1.0 / 8},
    Unit{"Kbps", 1e3 / 8},
    Unit{"kbps", 1e3 / 8},
    Unit{"Mbps", 1e6 / 8},
    Unit{"Gbps", 1e9 / 8},
    Unit{"Tbps", 1e12 / 8},
    Unit{"B/s", 1.0},
    Unit{"KB/s", 1e3},
    Unit{"kB/s", 1e3},
    Unit{"MB/s", 1e6},
    Unit{"GB/s", 1e9},
    Unit{"KiB/s", 1024.0},
    Unit{"MiB/s", 1024.0 * 1024},
    Unit{"GiB/s", 1024.0 * 1024 * 1024},
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <size_t N>
std::string unit_list(const std::array<Unit, N>& units) {
  std::string out;
  for (const Unit& u : units) {
    if (!out.empty()) out += ", ";
    out += u.suffix;
  }
  return out;
}

// Splits "12.5ms" into 12.5 and "ms". The number must be non-negative and finite.
struct NumberAndSuffix {
  double number = 0;
  bool integral = true;
  std::string_view suffix;
  std::string error;
};

NumberAndSuffix split_number(std::string_view text, std::string_view what) {
  NumberAndSuffix out;
  text = trim(text);
  if (text.empty()) {
    out.error = "empty " + std::string(what);
    return out;
  }
  if (text.front() == '-') {
    out.error = std::string(what) + " '" + std::string(text) + "' must not be negative";
    return out;
  }
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) {
    if (text[i] == '.') out.integral = false;
    ++i;
  }
  if (i == 0) {
    out.error = std::string(what) + " '" + std::string(text) + "' does not start with a number";
    return out;
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, out.number);
  if (ec != std::errc() || ptr != text.data() + i || !std::isfinite(out.number)) {
    out.error = std::string(what) + " '" + std::string(text) + "' has a malformed number";
    return out;
  }
  out.suffix = trim(text.substr(i));
  return out;
}

template <size_t N>
const Unit* find_unit(const std::array<Unit, N>& units, std::string_view suffix) {
  for (const Unit& u : units) {
    if (u.suffix == suffix) return &u;
  }
  return nullptr;
}

// Scales and range-checks; rounds to the nearest integer.
std::optional<std::uint64_t> scaled(double number, double scale) {
  const double v = std::round(number * scale);
  if (!(v >= 0) || v >= 18446744073709549568.0) return std::nullopt;  // below 2^64
  return static_cast<std::uint64_t>(v);
}

}  // namespace

Parsed<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  NumberAndSuffix n = split_number(text, "duration");
  if (!n.error.empty()) return {.error = n.error};
  const std::string shown(trim(text));
  if (n.suffix.empty()) {
    return {.error = "duration '" + shown + "' needs a unit (" + unit_list(kDurationUnits) + ")"};
  }
  const Unit* unit = find_unit(kDurationUnits, n.suffix);
  if (unit == nullptr) {
    return {.error = "duration '" + shown + "' has unknown unit '" + std::string(n.suffix) +
                     "' (use " + unit_list(kDurationUnits) + ")"};
  }
  std::optional<std::uint64_t> ns = scaled(n.number, unit->scale);
  if (!ns || *ns > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return {.error = "duration '" + shown + "' is too large"};
  }
  return {.value = std::chrono::nanoseconds(static_cast<std::int64_t>(*ns))};
}

Parsed<std::uint64_t> parse_bytes(std::string_view text) {
  NumberAndSuffix n = split_number(text, "size");
  if (!n.error.empty()) return {.error = n.error};
  const std::string shown(trim(text));
  if (n.suffix.empty()) {
    if (!n.integral) return {.error = "size '" + shown + "' without a unit must be whole bytes"};
    std::optional<std::uint64_t> v = scaled(n.number, 1.0);
    if (!v) return {.error = "size '" + shown + "' is too large"};
    return {.value = *v};
  }
  const Unit* unit = find_unit(kByteUnits, n.suffix);
  if (unit == nullptr) {
    std::string hint;
    if (!n.suffix.empty() && n.suffix.back() == 'b') {
      hint = "; sizes are in bytes (B), not bits (b)";
    }
    return {.error = "size '" + shown + "' has unknown unit '" + std::string(n.suffix) + "' (use " +
                     unit_list(kByteUnits) + ")" + hint};
  }
  std::optional<std::uint64_t> v = scaled(n.number, unit->scale);
  if (!v) return {.error = "size '" + shown + "' is too large"};
  return {.value = *v};
}

Parsed<std::uint64_t> parse_rate(std::string_view text) {
  NumberAndSuffix n = split_number(text, "rate");
  if (!n.error.empty()) return {.error = n.error};
  const std::string shown(trim(text));
  const Unit* unit = n.suffix.empty() ? nullptr : find_unit(kRateUnits, n.suffix);
  if (unit == nullptr) {
    return {.error = "rate '" + shown + "' needs a unit (" + unit_list(kRateUnits) + ")"};
  }
  std::optional<std::uint64_t> v = scaled(n.number, unit->scale);
  if (!v) return {.error = "rate '" + shown + "' is too large"};
  if (*v == 0 && n.number > 0)
    return {.error = "rate '" + shown + "' is below one byte per second"};
  return {.value = *v};
}

namespace {

// Picks the largest unit that divides the value exactly, else the largest not above it
// with up to three decimals.
template <size_t N>
std::string format_with(double value, const std::array<Unit, N>& units,
                        std::initializer_list<std::string_view> preferred) {
  const Unit* best = nullptr;
  for (std::string_view suffix : preferred) {
    const Unit* u = find_unit(units, suffix);
    if (u != nullptr && value >= u->scale && (best == nullptr || u->scale > best->scale)) best = u;
  }
  if (best == nullptr) best = find_unit(units, *preferred.begin());
  double scaled_value = value / best->scale;
  char buf[64];
  if (std::fabs(scaled_value - std::round(scaled_value)) < 1e-9) {
    std::snprintf(buf, sizeof buf, "%.0f", scaled_value);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", scaled_value);
  }
  return std::string(buf) + std::string(best->suffix);
}

}  // namespace

std::string format_duration(std::chrono::nanoseconds d) {
  return format_with(static_cast<double>(d.count()), kDurationUnits, {"ns", "us", "ms", "s"});
}

std::string format_bytes(std::uint64_t bytes) {
  return format_with(static_cast<double>(bytes), kByteUnits, {"B", "KiB", "MiB", "GiB", "TiB"});
}

std::string format_rate(std::uint64_t bytes_per_second) {
  return format_with(static_cast<double>(bytes_per_second), kRateUnits,
                     {"bps", "Kbps", "Mbps", "Gbps", "Tbps"});
}

}  // namespace infergate::config
