#include "health/triton_metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <utility>

namespace infergate::health {
namespace {

constexpr std::size_t kMaxProblems = 5;

enum Signal : std::uint8_t {
  kPending,
  kQueue,
  kCompute,
  kSuccess,
  kFailure,
  kGpuUtilization,
  kMemoryUsed,
  kMemoryTotal,
  kSignals,  // how many; also "not one of ours"
};

constexpr std::pair<std::string_view, Signal> kNames[] = {
    {"nv_inference_pending_request_count", kPending},
    {"nv_inference_queue_duration_us", kQueue},
    {"nv_inference_compute_infer_duration_us", kCompute},
    {"nv_inference_request_success", kSuccess},
    {"nv_inference_request_failure", kFailure},
    {"nv_gpu_utilization", kGpuUtilization},
    {"nv_gpu_memory_used_bytes", kMemoryUsed},
    {"nv_gpu_memory_total_bytes", kMemoryTotal},
};

Signal signal_of(std::string_view name) {
  for (const auto& [n, s] : kNames) {
    if (n == name) return s;
  }
  return kSignals;
}

bool blank(char c) { return c == ' ' || c == '\t'; }
bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

// A sample value as Prometheus reads it (Go's ParseFloat): decimal or exponent notation
// with an optional sign, or Inf, Infinity, NaN in any case. Out-of-range is an error.
std::optional<double> parse_value(std::string_view token) {
  bool negative = false;
  if (!token.empty() && (token.front() == '+' || token.front() == '-')) {
    negative = token.front() == '-';
    token.remove_prefix(1);
  }
  if (token.empty() || token.front() == '+' || token.front() == '-') return std::nullopt;
  double value = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (ec != std::errc() || ptr != token.data() + token.size()) return std::nullopt;
  return negative ? -value : value;
}

struct Sample {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string>> labels;
  double value = 0;
};

// One sample line: name, optional {labels}, value, optional timestamp.
class LineParser {
 public:
  explicit LineParser(std::string_view line) : line_(line) {}

  // False (with error() and column()) if the line is not a well-formed sample.
  bool parse(Sample& out) {
    out.name = name(/*metric=*/true);
    if (out.name.empty()) return fail("expected a metric name");
    const bool spaced = at_blank();
    skip_blanks();
    if (at('{')) {
      ++pos_;
      if (!labels(out)) return false;
      skip_blanks();
    } else if (!spaced) {
      return fail("expected '{' or a space after the metric name");
    }
    const std::size_t value_at = pos_;
    const std::string_view token = word();
    if (token.empty()) return fail("expected a value");
    std::optional<double> value = parse_value(token);
    if (!value) {
      pos_ = value_at;
      return fail("the value is not a number");
    }
    out.value = *value;
    skip_blanks();
    const std::string_view timestamp = word();
    if (!timestamp.empty()) {
      std::int64_t ms = 0;
      auto [ptr, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ms);
      if (ec != std::errc() || ptr != timestamp.data() + timestamp.size()) {
        pos_ -= timestamp.size();
        return fail("the timestamp is not an integer");
      }
      skip_blanks();
    }
    if (pos_ != line_.size()) return fail("unexpected text after the value");
    return true;
  }

  const std::string& error() const { return error_; }
  std::size_t column() const { return error_pos_ + 1; }

 private:
  bool fail(std::string message) {
    error_ = std::move(message);
    error_pos_ = pos_;
    return false;
  }
  bool at(char c) const { return pos_ < line_.size() && line_[pos_] == c; }
  bool at_blank() const { return pos_ < line_.size() && blank(line_[pos_]); }
  void skip_blanks() {
    while (at_blank()) ++pos_;
  }
  // A metric name may also hold ':'; a label name may not.
  std::string_view name(bool metric) {
    const std::size_t start = pos_;
    auto first = [&](char c) { return name_start(c) || (metric && c == ':'); };
    auto rest = [&](char c) { return name_char(c) || (metric && c == ':'); };
    if (pos_ >= line_.size() || !first(line_[pos_])) return {};
    ++pos_;
    while (pos_ < line_.size() && rest(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  std::string_view word() {
    const std::size_t start = pos_;
    while (pos_ < line_.size() && !blank(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  // After '{': name="value" pairs separated by commas (a trailing one allowed), then '}'.
  bool labels(Sample& out) {
    for (;;) {
      skip_blanks();
      if (at('}')) break;
      const std::string_view label = name(/*metric=*/false);
      if (label.empty()) return fail("expected a label name or '}'");
      for (const auto& [existing, unused] : out.labels) {
        if (existing == label) return fail("a label appears twice");
      }
      skip_blanks();
      if (!at('=')) return fail("expected '=' after a label name");
      ++pos_;
      skip_blanks();
      if (!at('"')) return fail("expected a quoted label value");
      ++pos_;
      std::string value;
      if (!label_value(value)) return false;
      out.labels.emplace_back(label, std::move(value));
      skip_blanks();
      if (at(',')) {
        ++pos_;
        continue;
      }
      if (!at('}')) return fail("expected ',' or '}' after a label value");
      break;
    }
    ++pos_;  // '}'
    return true;
  }
  // The rest of a quoted label value, with \\, \" and \n unescaped.
  bool label_value(std::string& out) {
    while (pos_ < line_.size()) {
      const char c = line_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= line_.size()) break;
      const char e = line_[pos_];
      if (e != '\\' && e != '"' && e != 'n') return fail("invalid escape in a label value");
      ++pos_;
      out += e == 'n' ? '\n' : e;
    }
    return fail("unterminated label value");
  }

  std::string_view line_;
  std::size_t pos_ = 0;
  std::string error_;
  std::size_t error_pos_ = 0;
};

// A series' identity: its name and its labels in name order.
std::string series_key(const Sample& s) {
  std::vector<std::pair<std::string_view, std::string>> labels = s.labels;
  std::sort(labels.begin(), labels.end());
  std::string key(s.name);
  for (const auto& [name, value] : labels) {
    key += '\0';
    key += name;
    key += '\0';
    key += value;
  }
  return key;
}

struct Accumulator {
  double sum = 0;
  std::size_t count = 0;
};

class PageParser {
 public:
  TritonParseResult run(std::string_view text) {
    std::size_t number = 0;
    std::size_t lines = 0;
    while (!text.empty()) {
      const std::size_t end = text.find('\n');
      std::string_view line = text.substr(0, end);
      text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
      ++number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      while (!line.empty() && blank(line.front())) line.remove_prefix(1);
      if (line.empty()) continue;
      ++lines;
      if (line.front() == '#') continue;  // HELP, TYPE and comments
      read_line(line, number);
    }
    finish(lines);
    return std::move(result_);
  }

 private:
  void problem(std::size_t number, std::size_t column, const std::string& what) {
    if (result_.problems.size() >= kMaxProblems) return;
    std::string p = "line " + std::to_string(number);
    if (column > 0) p += " column " + std::to_string(column);
    result_.problems.push_back(p + ": " + what);
  }

  void read_line(std::string_view line, std::size_t number) {
    Sample sample;
    LineParser parser(line);
    if (!parser.parse(sample)) {
      ++result_.bad_lines;
      problem(number, parser.column(), parser.error());
      return;
    }
    ++result_.samples;
    const Signal signal = signal_of(sample.name);
    if (signal == kSignals) return;
    const std::string name(sample.name);
    if (!std::isfinite(sample.value) || sample.value < 0) {
      ++result_.ignored;
      problem(number, 0,
              name + " is " + (std::isnan(sample.value) ? "NaN" : "out of range") + "; ignored");
      return;
    }
    if (!seen_.insert(series_key(sample)).second) {
      ++result_.ignored;
      problem(number, 0, name + " repeats a series; ignored");
      return;
    }
    double value = sample.value;
    if (signal == kGpuUtilization) value = std::min(value, 1.0);
    acc_[signal].sum += value;
    ++acc_[signal].count;
    if (signal == kPending || signal == kQueue || signal == kSuccess || signal == kFailure) {
      add_to_model(sample, signal, value);
    }
  }

  void add_to_model(const Sample& sample, Signal signal, double value) {
    auto& models = result_.signals.models;
    for (const auto& [label, model] : sample.labels) {
      if (label != "model") continue;
      auto it = models.find(model);
      if (it == models.end()) {
        if (models.size() >= TritonSignals::kMaxModels) return;
        it = models.emplace(model, TritonModelSignals{}).first;
      }
      TritonModelSignals& m = it->second;
      switch (signal) {
        case kPending:
          m.pending_requests += value;
          break;
        case kQueue:
          m.queue_seconds += value * 1e-6;
          break;
        default:
          m.requests += value;
          break;
      }
      return;
    }
  }

  void finish(std::size_t lines) {
    TritonSignals& s = result_.signals;
    auto sum = [&](Signal signal, double scale) -> std::optional<double> {
      if (acc_[signal].count == 0) return std::nullopt;
      return acc_[signal].sum * scale;
    };
    s.pending_requests = sum(kPending, 1);
    s.queue_seconds = sum(kQueue, 1e-6);
    s.compute_seconds = sum(kCompute, 1e-6);
    s.success_requests = sum(kSuccess, 1);
    s.failure_requests = sum(kFailure, 1);
    if (acc_[kGpuUtilization].count > 0) {
      s.gpu_utilization =
          acc_[kGpuUtilization].sum / static_cast<double>(acc_[kGpuUtilization].count);
    }
    s.gpu_memory_used_bytes = sum(kMemoryUsed, 1);
    s.gpu_memory_total_bytes = sum(kMemoryTotal, 1);
    if (s.any()) return;
    const std::string first =
        result_.problems.empty() ? "" : " (first: " + result_.problems.front() + ")";
    if (lines == 0) {
      result_.error = "the metrics page is empty";
    } else if (result_.samples == 0 && result_.bad_lines == 0) {
      result_.error = "the metrics page has comments only, no samples";
    } else if (result_.samples == 0) {
      result_.error = "not Prometheus text: " + std::to_string(result_.bad_lines) + " of " +
                      std::to_string(lines) + " lines unreadable" + first;
    } else if (result_.ignored > 0) {
      result_.error = "Triton's signals were all unusable" + first;
    } else {
      result_.error = "no Triton signals (nv_inference_*, nv_gpu_*) among " +
                      std::to_string(result_.samples) + " samples";
    }
  }

  TritonParseResult result_;
  std::array<Accumulator, kSignals> acc_{};
  std::set<std::string> seen_;
};

}  // namespace

bool TritonSignals::any() const {
  return pending_requests || queue_seconds || compute_seconds || success_requests ||
         failure_requests || gpu_utilization || gpu_memory_used_bytes || gpu_memory_total_bytes;
}

TritonParseResult parse_triton_metrics(std::string_view text) { return PageParser().run(text); }

}  // namespace infergate::health
