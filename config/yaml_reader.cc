#include "config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "config/units.h"

namespace infergate::config {
namespace {

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "an undefined value";
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::vector<std::string_view> words(std::string_view key) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= key.size(); ++i) {
    if (i == key.size() || key[i] == '_') {
      if (i > start) out.push_back(key.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// True when every '_'-separated word of `typo` is a word of `known` ("max_streams" for
// "max_concurrent_streams").
bool words_contained(std::string_view typo, std::string_view known) {
  const std::vector<std::string_view> k = words(known);
  const std::vector<std::string_view> t = words(typo);
  if (t.empty()) return false;
  for (std::string_view w : t) {
    if (std::find(k.begin(), k.end(), w) == k.end()) return false;
  }
  return true;
}

}  // namespace

std::string Problem::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ':';
    out += std::to_string(line);
    out += ':';
    out += std::to_string(column);
  }
  out += ": ";
  if (!yaml_path.empty()) {
    out += yaml_path;
    out += ": ";
  }
  out += message;
  return out;
}

void ProblemSink::add(const std::string& yaml_path, const YAML::Mark& mark, std::string message) {
  // yaml-cpp marks are 0-based and -1 when unknown.
  problems_.push_back(Problem{.yaml_path = yaml_path,
                              .file = file_,
                              .line = mark.line >= 0 ? mark.line + 1 : 0,
                              .column = mark.column >= 0 ? mark.column + 1 : 0,
                              .message = std::move(message)});
}

std::optional<std::string> Value::scalar(std::string_view expected) const {
  if (!node_.IsScalar()) {
    problem("expected " + std::string(expected) + ", got " + describe(node_));
    return std::nullopt;
  }
  return node_.Scalar();
}

std::optional<std::string> Value::string() const { return scalar("a string"); }

std::optional<bool> Value::boolean() const {
  std::optional<std::string> s = scalar("true or false");
  if (!s) return std::nullopt;
  if (*s == "true") return true;
  if (*s == "false") return false;
  problem("expected true or false, got '" + *s + "'");
  return std::nullopt;
}

std::optional<std::int64_t> Value::integer(std::int64_t min, std::int64_t max) const {
  std::optional<std::string> s = scalar("an integer");
  if (!s) return std::nullopt;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || ptr != s->data() + s->size()) {
    problem("expected an integer, got '" + *s + "'");
    return std::nullopt;
  }
  if (v < min || v > max) {
    problem("value " + *s + " is out of range [" + std::to_string(min) + ", " +
            std::to_string(max) + "]");
    return std::nullopt;
  }
  return v;
}

std::optional<double> Value::number(double min, double max) const {
  std::optional<std::string> s = scalar("a number");
  if (!s) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || ptr != s->data() + s->size() || !std::isfinite(v)) {
    problem("expected a number, got '" + *s + "'");
    return std::nullopt;
  }
  if (v < min || v > max) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "value %s is out of range [%g, %g]", s->c_str(), min, max);
    problem(buf);
    return std::nullopt;
  }
  return v;
}

template <typename T>
static std::optional<T> checked(const Value& v, const Parsed<T>& parsed) {
  if (!parsed.ok()) {
    v.problem(parsed.error);
    return std::nullopt;
  }
  return parsed.value;
}

std::optional<std::chrono::nanoseconds> Value::duration() const {
  std::optional<std::string> s = scalar("a duration such as 250ms");
  if (!s) return std::nullopt;
  return checked(*this, parse_duration(*s));
}

std::optional<std::uint64_t> Value::bytes() const {
  std::optional<std::string> s = scalar("a size such as 64KiB");
  if (!s) return std::nullopt;
  return checked(*this, parse_bytes(*s));
}

std::optional<std::uint64_t> Value::rate() const {
  std::optional<std::string> s = scalar("a rate such as 10Gbps");
  if (!s) return std::nullopt;
  return checked(*this, parse_rate(*s));
}

std::optional<HostPort> Value::host_port(bool allow_port_zero) const {
  std::optional<std::string> s = scalar("an address host:port");
  if (!s) return std::nullopt;
  return checked(*this, parse_host_port(*s, allow_port_zero));
}

std::optional<std::string> Value::choice(std::initializer_list<std::string_view> choices) const {
  std::optional<std::string> s = scalar("a string");
  if (!s) return std::nullopt;
  std::string list;
  for (std::string_view c : choices) {
    if (c == *s) return s;
    if (!list.empty()) list += " | ";
    list += c;
  }
  problem("'" + *s + "' is not one of: " + list);
  return std::nullopt;
}

bool Value::for_each_element(const std::function<void(const Value&)>& fn) const {
  if (!node_.IsSequence()) {
    problem("expected a list, got " + describe(node_));
    return false;
  }
  for (size_t i = 0; i < node_.size(); ++i) {
    fn(Value(node_[i], path_ + "[" + std::to_string(i) + "]", sink_));
  }
  return true;
}

MapReader::MapReader(const Value& value) : parent_(value) {
  if (!value.node().IsMap()) {
    value.problem("expected a mapping, got " + describe(value.node()));
    return;
  }
  valid_ = true;
  // yaml-cpp keeps both entries of a duplicated key, and only the first would be read.
  std::set<std::string> seen;
  for (const auto& entry : value.node()) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      value.sink()->add(value.path(), key.Mark(),
                        "a mapping key must be a plain string, got " + describe(key));
    } else if (!seen.insert(key.Scalar()).second) {
      value.sink()->add(child_path(key.Scalar()), key.Mark(),
                        "duplicate key '" + key.Scalar() + "'");
    }
  }
}

std::string MapReader::child_path(std::string_view key) const {
  return parent_.path().empty() ? std::string(key) : parent_.path() + "." + std::string(key);
}

std::optional<Value> MapReader::get(std::string_view key) {
  known_.emplace_back(key);
  if (!valid_) return std::nullopt;
  for (const auto& entry : parent_.node()) {
    if (entry.first.IsScalar() && entry.first.Scalar() == key) {
      if (entry.second.IsNull()) return std::nullopt;
      return Value(entry.second, child_path(key), parent_.sink());
    }
  }
  return std::nullopt;
}

std::optional<Value> MapReader::require(std::string_view key) {
  std::optional<Value> v = get(key);
  if (!v && valid_) {
    parent_.problem("missing required key '" + std::string(key) + "'");
  }
  return v;
}

void MapReader::finish() {
  if (!valid_) return;
  for (const auto& entry : parent_.node()) {
    if (!entry.first.IsScalar()) continue;
    const std::string& key = entry.first.Scalar();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::string message = "unknown key '" + key + "'";
    const std::string* closest = nullptr;
    size_t best = 3;  // suggest only near misses
    for (const std::string& k : known_) {
      size_t d = words_contained(key, k) ? 0 : edit_distance(key, k);
      if (d < best) {
        best = d;
        closest = &k;
      }
    }
    if (closest != nullptr) message += " (did you mean '" + *closest + "'?)";
    parent_.sink()->add(child_path(key), entry.first.Mark(), std::move(message));
  }
}

}  // namespace infergate::config
