#include "tests/integration/sim/sim_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <climits>
#include <cstring>

namespace infergate::testing {

using namespace std::chrono_literals;

Sim::Sim(std::vector<std::string> args) {
  bool metrics = false;
  for (const std::string& a : args) metrics = metrics || a.starts_with("--metrics-listen");
  process_ = std::make_unique<Process>(INFERGATE_SIM_PATH, std::move(args));
  port_ = process_->wait_for_port("listening on", 10s);
  if (metrics) metrics_port_ = process_->wait_for_port("metrics on", 10s);
  if (port_ > 0) {
    channel_ = make_channel(port_);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }
}

std::shared_ptr<grpc::Channel> make_channel(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<grpc::ClientContext> context_with_deadline(std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

std::optional<HttpResult> http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t head_end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.1 ") || head_end == std::string::npos) return std::nullopt;
  return HttpResult{.status = std::atoi(raw.c_str() + 9), .body = raw.substr(head_end + 4)};
}

std::optional<double> metric(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n')
      return std::strtod(text.c_str() + pos + series.size(), nullptr);
    pos += series.size();
  }
  return std::nullopt;
}

std::optional<double> scrape(int metrics_port, const std::string& series) {
  std::optional<HttpResult> page = http_get(metrics_port, "/metrics");
  if (!page || page->status != 200) return std::nullopt;
  return metric(page->body, series);
}

inference::ModelInferRequest raw_request(const std::string& model, const std::string& datatype,
                                         std::vector<std::int64_t> shape, std::string data) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype(datatype);
  for (std::int64_t d : shape) in->add_shape(d);
  r.add_raw_input_contents(std::move(data));
  return r;
}

inference::ModelInferRequest fp32_request(const std::string& model, int n) {
  std::string data(static_cast<size_t>(n) * 4, '\0');
  for (int i = 0; i < n; ++i) {
    float v = static_cast<float>(i) * 0.5f;
    std::memcpy(data.data() + static_cast<size_t>(i) * 4, &v, 4);
  }
  return raw_request(model, "FP32", {1, n}, std::move(data));
}

inference::ModelInferRequest sequence_request(const std::string& model, std::uint64_t sequence_id,
                                              std::int32_t value, bool start, bool end) {
  std::string data(4, '\0');
  std::memcpy(data.data(), &value, 4);
  inference::ModelInferRequest r = raw_request(model, "INT32", {1}, std::move(data));
  (*r.mutable_parameters())["sequence_id"].set_uint64_param(sequence_id);
  if (start) (*r.mutable_parameters())["sequence_start"].set_bool_param(true);
  if (end) (*r.mutable_parameters())["sequence_end"].set_bool_param(true);
  return r;
}

std::string string_param(const inference::ModelInferResponse& response, const std::string& name) {
  auto it = response.parameters().find(name);
  return it == response.parameters().end() ? "" : it->second.string_param();
}

}  // namespace infergate::testing
