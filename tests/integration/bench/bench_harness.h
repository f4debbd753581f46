// Helpers for running infergate-bench against infergate-sim processes: start a sim and
// learn its port, run the bench to its exit, read its JSON and CSV output.
#pragma once

#include <google/protobuf/struct.pb.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace infergate::testing {

// An infergate-sim listening on 127.0.0.1 (an OS-chosen port).
class Sim {
 public:
  explicit Sim(std::vector<std::string> extra_args);
  std::string url() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// A finished infergate-bench run.
struct BenchRun {
  std::optional<int> exit_code;  // nullopt: it did not exit in time (and was killed)
  std::vector<std::string> lines;
  std::string output() const;  // every line, newline-separated
};

BenchRun run_bench(std::vector<std::string> args,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A fresh path under the test's temporary directory.
std::string temp_path(const std::string& name);

// The parsed JSON file; fails the test (and returns an empty Struct) if it does not parse.
google::protobuf::Struct read_json(const std::string& path);
// The results[i] object of a bench JSON file, as key -> value.
const google::protobuf::Map<std::string, google::protobuf::Value>& result(
    const google::protobuf::Struct& doc, int i);
const google::protobuf::Map<std::string, google::protobuf::Value>& result(
    const google::protobuf::Struct&& doc, int i) = delete;  // would dangle
double number(const google::protobuf::Map<std::string, google::protobuf::Value>& row,
              const std::string& key);

// The CSV file as rows of fields, header first.
std::vector<std::vector<std::string>> read_csv(const std::string& path);

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
int closed_port();

}  // namespace infergate::testing
