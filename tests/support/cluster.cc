#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <stdexcept>

namespace infergate::testing {

using namespace std::chrono_literals;

Sim::Sim(std::string name, std::vector<std::string> args) : name_(std::move(name)) {
  std::vector<std::string> argv = {"--name",           name_,        "--listen", "127.0.0.1:0",
                                   "--metrics-listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  // scripts/tsan.sh: the sim is the tests' gRPC server, not what they test; its
  // reactors hop gRPC's threads through hand-offs that TSan cannot see in Debian's
  // gRPC, so under TSan it gets its own options (reports off).
  std::vector<std::string> env;
  if (const char* options = std::getenv("INFERGATE_TEST_SIM_TSAN_OPTIONS")) {
    env.push_back(std::string("TSAN_OPTIONS=") + options);
  }
  process_ = std::make_unique<Process>(INFERGATE_SIM_PATH, argv, /*echo=*/true, env);
  port_ = process_->wait_for_port(name_ + " listening on", 20s);
  metrics_port_ = process_->wait_for_port(name_ + " metrics on", 20s);
  if (port_ == 0 || metrics_port_ == 0) throw std::runtime_error("sim " + name_ + " did not start");
}

double Sim::metric(const std::string& series) {
  return metric_value(http_get(metrics_port_, "/metrics"), series);
}

namespace {

std::vector<BackendYaml> plain(const std::vector<std::pair<std::string, std::string>>& backends) {
  std::vector<BackendYaml> out;
  for (const auto& [name, address] : backends) out.push_back({name, address, {}});
  return out;
}

}  // namespace

Gateway::Gateway(const std::vector<std::pair<std::string, std::string>>& backends,
                 const std::string& extra_yaml, int workers, bool wait_healthy)
    : Gateway(WithKeys{}, plain(backends), extra_yaml, workers, wait_healthy) {}

Gateway::Gateway(WithKeys, const std::vector<BackendYaml>& backends, const std::string& extra_yaml,
                 int workers, bool wait_healthy) {
  static int counter = 0;
  config_path_ = ::testing::TempDir() + "/infergate-" + std::to_string(getpid()) + "-" +
                 std::to_string(counter++) + ".yaml";
  {
    std::ofstream out(config_path_);
    out << "listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\n";
    out << "workers: " << workers << "\n";
    out << "backends:\n";
    for (const BackendYaml& b : backends) {
      out << "  - name: " << b.name << "\n";
      if (!b.address.empty()) out << "    address: \"" << b.address << "\"\n";
      for (const std::string& key : b.keys) out << "    " << key << "\n";
    }
    out << extra_yaml << "\n";
  }
  process_ = std::make_unique<Process>(INFERGATE_BIN_PATH,
                                       std::vector<std::string>{"--config", config_path_});
  admin_port_ = process_->wait_for_port("admin_listening address=", 20s);
  port_ = process_->wait_for_port("gateway listening address=", 20s);
  if (port_ == 0 || admin_port_ == 0) throw std::runtime_error("gateway did not start");
  if (wait_healthy && !wait_for_healthy(*this, static_cast<int>(backends.size()))) {
    throw std::runtime_error("the gateway's backends did not become healthy");
  }
}

double Gateway::metric(const std::string& series) { return metric_value(metrics_text(), series); }

std::string Gateway::metrics_text() { return http_get(admin_port_, "/metrics"); }

bool wait_for_healthy(Gateway& gateway, int n, std::chrono::milliseconds timeout) {
  return wait_until([&] { return gateway.metric("infergate_healthy_backends") == n; }, timeout);
}

std::vector<std::pair<std::string, std::string>> backends_of(
    const std::vector<std::unique_ptr<Sim>>& sims) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : sims) out.emplace_back(s->name(), s->address());
  return out;
}

std::shared_ptr<grpc::Channel> make_channel(int port, bool own_connection) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT32_MAX);
  args.SetMaxSendMessageSize(INT32_MAX);
  if (own_connection) {
    static std::atomic<int> salt{0};             // tests make channels from many threads at once
    args.SetInt("infergate.test.salt", ++salt);  // distinct args: no shared subchannel
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<inference::GRPCInferenceService::Stub> make_stub(int port, bool own_connection) {
  return inference::GRPCInferenceService::NewStub(make_channel(port, own_connection));
}

inference::ModelInferRequest identity_request(size_t bytes, std::uint32_t seed,
                                              const std::string& model) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  r.set_id("req-" + std::to_string(seed));
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(static_cast<std::int64_t>(bytes / 4));
  std::string data(bytes, '\0');
  std::mt19937 rng(seed);
  for (size_t i = 0; i < bytes; i += 4) {
    const std::uint32_t v = rng();
    std::memcpy(data.data() + i, &v, std::min<size_t>(4, bytes - i));
  }
  r.add_raw_input_contents(std::move(data));
  return r;
}

grpc::Status infer_with_token(int port, const std::string& token, const std::string& job) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!token.empty()) c.AddMetadata("authorization", "Bearer " + token);
  if (!job.empty()) c.AddMetadata("infergate-job", job);
  inference::ModelInferResponse r;
  return make_stub(port)->ModelInfer(&c, identity_request(64, 1), &r);
}

bool make_self_signed_certificate(const std::string& dir, const std::string& name) {
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      dir + "/" + name + ".key -out " + dir + "/" + name + ".crt >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

std::string http_get(int port, const std::string& path, int* status,
                     const std::vector<std::string>& headers) {
  if (status != nullptr) *status = 0;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const std::string& h : headers) request += h + "\r\n";
  request += "\r\n";
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return "";
  }
  std::string response;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos || response.size() < 12) return "";
  if (status != nullptr) *status = std::atoi(response.c_str() + 9);
  return response.substr(header_end + 4);
}

double metric_value(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (!line.starts_with("#") && line.starts_with(series)) {
      const char next = line.size() > series.size() ? line[series.size()] : '\0';
      if (next == ' ' || next == '{' || next == ',' || series.back() == '}') {
        const size_t space = line.rfind(' ');
        return std::atof(std::string(line.substr(space + 1)).c_str());
      }
    }
    pos = end + 1;
  }
  return -1;
}

std::string served_by(const inference::ModelInferResponse& response) {
  auto it = response.parameters().find("served_by");
  return it == response.parameters().end() ? "" : it->second.string_param();
}

int count_until_refused(int most, const std::function<grpc::Status(int)>& call,
                        grpc::Status& refused) {
  for (int i = 0; i < most; ++i) {
    if (grpc::Status s = call(i); !s.ok()) {
      refused = std::move(s);
      return i;
    }
  }
  return most;
}

}  // namespace infergate::testing
