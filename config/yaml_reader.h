// Typed, located reading of a YAML document that collects every problem instead of
// stopping at the first. Internal to config/; yaml-cpp does not leak past the loader.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/host_port.h"
#include "config/problem.h"

namespace infergate::config {

class ProblemSink {
 public:
  explicit ProblemSink(std::string file) : file_(std::move(file)) {}

  void add(const std::string& yaml_path, const YAML::Mark& mark, std::string message);
  const std::string& file() const { return file_; }
  std::vector<Problem>& problems() { return problems_; }

 private:
  std::string file_;
  std::vector<Problem> problems_;
};

// A YAML value with its path in the document; the accessors report a problem and return
// nullopt when the value has the wrong type or does not parse.
class Value {
 public:
  Value(YAML::Node node, std::string path, ProblemSink* sink)
      : node_(std::move(node)), path_(std::move(path)), sink_(sink) {}

  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  YAML::Mark mark() const { return node_.Mark(); }
  ProblemSink* sink() const { return sink_; }
  void problem(std::string message) const { sink_->add(path_, node_.Mark(), std::move(message)); }

  std::optional<std::string> string() const;
  std::optional<bool> boolean() const;
  std::optional<std::int64_t> integer(std::int64_t min, std::int64_t max) const;
  std::optional<double> number(double min, double max) const;
  std::optional<std::chrono::nanoseconds> duration() const;
  std::optional<std::uint64_t> bytes() const;
  std::optional<std::uint64_t> rate() const;
  std::optional<HostPort> host_port(bool allow_port_zero) const;
  // One of `choices`, reported with the list when it is not.
  std::optional<std::string> choice(std::initializer_list<std::string_view> choices) const;

  // Calls fn for each element of a sequence (path "name[i]"); problem if not a sequence.
  bool for_each_element(const std::function<void(const Value&)>& fn) const;

 private:
  std::optional<std::string> scalar(std::string_view expected) const;

  YAML::Node node_;
  std::string path_;
  ProblemSink* sink_;
};

// A mapping whose keys must all be known: every key read through get() is marked, and
// finish() reports the rest as unknown (with a suggestion when one is close).
class MapReader {
 public:
  // Reports a problem (and reads nothing) if `value` is not a mapping.
  explicit MapReader(const Value& value);

  bool valid() const { return valid_; }
  // The value under `key`, or nullopt if absent (a null value counts as absent).
  std::optional<Value> get(std::string_view key);
  // As get(), but a missing key is a problem.
  std::optional<Value> require(std::string_view key);
  void finish();

 private:
  std::string child_path(std::string_view key) const;

  Value parent_;
  bool valid_ = false;
  std::vector<std::string> known_;
};

}  // namespace infergate::config
