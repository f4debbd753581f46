#include "tests/integration/bench/bench_harness.h"

#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

namespace infergate::testing {

Sim::Sim(std::vector<std::string> extra_args) {
  std::vector<std::string> args{"--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(INFERGATE_SIM_PATH, args);
  port_ = process_->wait_for_port("listening on", std::chrono::seconds(20));
  EXPECT_GT(port_, 0) << "infergate-sim did not start";
}

std::string BenchRun::output() const {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

BenchRun run_bench(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  Process bench(INFERGATE_BENCH_PATH, std::move(args));
  BenchRun run;
  run.exit_code = bench.wait_exit(timeout);
  // The exit is seen before the readers have taken the last lines; they end at EOF.
  bench.wait_for_line("\x01never\x01", std::chrono::seconds(5));
  run.lines = bench.lines();
  return run;
}

std::string temp_path(const std::string& name) {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "/bench_" + std::to_string(getpid()) + "_" +
         std::to_string(counter++) + "_" + name;
}

google::protobuf::Struct read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::Struct doc;
  auto status = google::protobuf::util::JsonStringToMessage(text.str(), &doc);
  EXPECT_TRUE(status.ok()) << path << ": " << status.ToString() << "\n" << text.str();
  return doc;
}

const google::protobuf::Map<std::string, google::protobuf::Value>& result(
    const google::protobuf::Struct& doc, int i) {
  static const google::protobuf::Struct kEmpty;
  auto it = doc.fields().find("results");
  if (it == doc.fields().end() || it->second.list_value().values_size() <= i) {
    ADD_FAILURE() << "no results[" << i << "]";
    return kEmpty.fields();
  }
  return it->second.list_value().values(i).struct_value().fields();
}

double number(const google::protobuf::Map<std::string, google::protobuf::Value>& row,
              const std::string& key) {
  auto it = row.find(key);
  if (it == row.end()) {
    ADD_FAILURE() << "no field '" << key << "'";
    return -1;
  }
  return it->second.number_value();
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',');) fields.push_back(f);
    if (!line.empty() && line.back() == ',') fields.push_back("");
    rows.push_back(std::move(fields));
  }
  return rows;
}

int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace infergate::testing
