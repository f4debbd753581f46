// TLS on the gRPC frontend: real gRPC clients through TLS and mTLS, refusals counted by
// reason, a plaintext listener beside the TLS one, and certificates that rotate without
// a restart. Keys and certificates are made by the test (openssl), never committed.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/raw_connection.h"
#include "tests/support/relay.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A small PKI in a temporary directory: CAs "ca", "ca2" and "rogue"; "server" (and
// "server2", from ca2) for 127.0.0.1 and localhost; "client" (CN=job-42) and "client2"
// (CN=job-7), from ca,
// "intruder" (from rogue) and "expired" (from ca, past its notAfter).
class Pki {
 public:
  Pki() {
    char pattern[] = "/tmp/infergate-pki-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    for (const char* ca : {"ca", "ca2", "rogue"}) make_ca(ca);
    const std::string san = "subjectAltName=IP:127.0.0.1,DNS:localhost";
    make_leaf("server", "ca", "/CN=localhost", san);
    make_leaf("server2", "ca2", "/CN=localhost", san);
    make_leaf("client", "ca", "/O=cms/CN=job-42", "extendedKeyUsage=clientAuth");
    make_leaf("client2", "ca", "/O=atlas/CN=job-7", "extendedKeyUsage=clientAuth");
    make_leaf("intruder", "rogue", "/CN=intruder", "extendedKeyUsage=clientAuth");
    make_leaf("expired", "ca", "/CN=expired", "extendedKeyUsage=clientAuth", -1);
  }
  ~Pki() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& file) const { return dir_ + "/" + file; }
  std::string pem(const std::string& file) const {
    std::ifstream in(path(file));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  bool ok() const { return ok_; }

 private:
  void run(const std::string& command) {
    if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) ok_ = false;
  }
  void make_ca(const std::string& name) {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=" +
        name + "-authority -keyout " + path(name + ".key") + " -out " + path(name + ".crt"));
  }
  // `days` < 0: expired already.
  void make_leaf(const std::string& name, const std::string& ca, const std::string& subject,
                 const std::string& extension, int days = 2) {
    std::ofstream(path(name + ".ext")) << extension << "\n";
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj " + subject +
        " -keyout " + path(name + ".key") + " -out " + path(name + ".csr"));
    run("openssl x509 -req -in " + path(name + ".csr") + " -CA " + path(ca + ".crt") + " -CAkey " +
        path(ca + ".key") + " -CAcreateserial -days " + std::to_string(days) + " -extfile " +
        path(name + ".ext") + " -out " + path(name + ".crt"));
  }

  std::string dir_;
  bool ok_ = true;
};

// A client of the gateway's TLS port that trusts `ca` (and presents `cert`, if given).
std::unique_ptr<inference::GRPCInferenceService::Stub> tls_stub(const Pki& pki, int port,
                                                                const std::string& ca,
                                                                const std::string& cert = "") {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pki.pem(ca + ".crt");
  if (!cert.empty()) {
    options.pem_cert_chain = pki.pem(cert + ".crt");
    options.pem_private_key = pki.pem(cert + ".key");
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
  args.SetMaxReceiveMessageSize(INT32_MAX);
  return inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::SslCredentials(options), args));
}

grpc::Status infer(inference::GRPCInferenceService::Stub& stub, std::uint32_t seed = 1,
                   const std::string& job = "") {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 5s);
  if (!job.empty()) c.AddMetadata("infergate-job", job);
  inference::ModelInferResponse r;
  grpc::Status s = stub.ModelInfer(&c, identity_request(1024, seed), &r);
  if (s.ok() && r.raw_output_contents(0) != identity_request(1024, seed).raw_input_contents(0)) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "answer differs");
  }
  return s;
}

std::string tls_yaml(const Pki& pki, const std::string& extra = "") {
  return "frontend:\n  tls:\n    cert: " + pki.path("server.crt") +
         "\n    key: " + pki.path("server.key") + "\n" + extra;
}

double failures(Gateway& gw, const std::string& reason) {
  return gw.metric("infergate_tls_handshake_failures_total{reason=\"" + reason + "\"}");
}

TEST(Tls, AGrpcClientInfersThroughTlsAndPlaintextIsRefusedAndCounted) {
  Pki pki;
  ASSERT_TRUE(pki.ok()) << "openssl could not make the test PKI";
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, tls_yaml(pki));
  auto stub = tls_stub(pki, gw.port(), "ca");
  for (std::uint32_t i = 0; i < 5; ++i) {
    const grpc::Status s = infer(*stub, i);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // A plaintext client on the TLS port gets nowhere, and the gateway says why.
  auto plain = make_stub(gw.port(), /*own_connection=*/true);
  EXPECT_FALSE(infer(*plain).ok());
  EXPECT_TRUE(wait_until([&] { return failures(gw, "plaintext") >= 1; }, 5s));
  EXPECT_TRUE(gw.process().wait_for_line("tls_handshake_failed", 2s).has_value());
  // A client that trusts another CA refuses the gateway's certificate.
  auto doubter = tls_stub(pki, gw.port(), "rogue");
  EXPECT_FALSE(infer(*doubter).ok());
  EXPECT_TRUE(wait_until([&] { return failures(gw, "client_rejected_certificate") >= 1; }, 5s));
  // And the gateway goes on serving.
  EXPECT_TRUE(infer(*stub, 9).ok());
}

// Large messages cross in many records both ways, with partial writes when the socket
// fills; several at once on one connection.
TEST(Tls, LargeMessagesRoundTripByteIdenticalThroughTls) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-a", {"--model", "identity:instances=4"});
  Gateway gw({{"sim-a", sim.address()}}, tls_yaml(pki));
  auto stub = tls_stub(pki, gw.port(), "ca");
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  std::mutex mu;
  std::string errors;
  for (std::uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const inference::ModelInferRequest request = identity_request(8 << 20, 100 + t);
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + 60s);
      inference::ModelInferResponse r;
      const grpc::Status s = stub->ModelInfer(&c, request, &r);
      if (s.ok() && r.raw_output_contents(0) == request.raw_input_contents(0)) {
        ++good;
      } else {
        std::lock_guard<std::mutex> lock(mu);
        errors += std::to_string(s.error_code()) + " " + s.error_message() + "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 4) << errors;
}

// What `openssl s_client -connect ... ARGS` printed (stdout and stderr).
std::string s_client(int port, const std::string& args) {
  const std::string command = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " +
                              args + " </dev/null 2>&1";
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// The handshake as OpenSSL's own client sees it: TLS 1.3 and 1.2 with ALPN h2; ALPN
// without h2, and TLS 1.1, refused as no common protocol.
TEST(Tls, OpensslClientSeesH2OverTls12And13AndNothingElse) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, tls_yaml(pki));
  const std::string ca = "-CAfile " + pki.path("ca.crt") + " -verify_return_error";
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    const std::string out = s_client(gw.port(), ca + " -alpn h2 " + version);
    EXPECT_NE(out.find("ALPN protocol: h2"), std::string::npos) << version << ":\n" << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
  }
  const std::string http1 = s_client(gw.port(), ca + " -alpn http/1.1");
  EXPECT_NE(http1.find("Cipher is (NONE)"), std::string::npos) << http1;
  const std::string old = s_client(gw.port(), ca + " -tls1_1");
  EXPECT_NE(old.find("Cipher is (NONE)"), std::string::npos) << old;
  EXPECT_TRUE(wait_until([&] { return failures(gw, "no_common_protocol") >= 2; }, 5s))
      << gw.metrics_text();
}

// A client that begins a TLS handshake and never finishes it (half a ClientHello, or
// nothing at all) is closed at frontend.handshake_timeout; the others are served.
TEST(Tls, AHandshakeThatNeverEndsIsClosedAtHandshakeTimeout) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, tls_yaml(pki) + "  handshake_timeout: 500ms\n");
  RawConnection half(gw.port());
  RawConnection silent(gw.port());
  ASSERT_TRUE(half.connected() && silent.connected());
  half.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  EXPECT_TRUE(half.closed_within(5s));
  EXPECT_TRUE(silent.closed_within(5s));
  EXPECT_TRUE(infer(*tls_stub(pki, gw.port(), "ca")).ok());
}

TEST(Tls, APlaintextListenerServesBesideTheTlsOne) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, tls_yaml(pki) + "listen_plaintext: \"127.0.0.1:0\"\n");
  const int plain_port = gw.process().wait_for_port("listening_plaintext address=", 5s);
  ASSERT_GT(plain_port, 0);
  EXPECT_TRUE(infer(*make_stub(plain_port, true)).ok());
  EXPECT_TRUE(infer(*tls_stub(pki, gw.port(), "ca")).ok());
}

// A verified subject is a credential: the infergate-job header narrows it, and cannot make
// one certificate's requests count as another's job.
TEST(Tls, TheJobHeaderCannotEscapeTheCertificatesJob) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             tls_yaml(pki, "    client_ca: " + pki.path("ca.crt") +
                               "\n    require_client_cert: true\nlimits:\n  max_jobs: 1\n"));
  auto cms = tls_stub(pki, gw.port(), "ca", "client");
  auto atlas = tls_stub(pki, gw.port(), "ca", "client2");
  ASSERT_TRUE(infer(*cms).ok());
  const grpc::Status posing = infer(*atlas, 1, "CN=job-42,O=cms");
  EXPECT_EQ(posing.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << posing.error_message();
  EXPECT_EQ(infer(*atlas).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(infer(*cms).ok());
}

TEST(Tls, MutualTlsVerifiesClientsAndTheirSubjectIsTheJob) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             tls_yaml(pki, "    client_ca: " + pki.path("ca.crt") +
                               "\n    require_client_cert: true\naccess_log: true\n"));
  const grpc::Status ok = infer(*tls_stub(pki, gw.port(), "ca", "client"));
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  // The verified subject is the request's job (no infergate-job header was sent).
  EXPECT_TRUE(gw.process().wait_for_line("CN=job-42", 5s).has_value());
  EXPECT_FALSE(infer(*tls_stub(pki, gw.port(), "ca")).ok()) << "no client certificate";
  EXPECT_TRUE(wait_until([&] { return failures(gw, "no_client_certificate") >= 1; }, 5s));
  EXPECT_FALSE(infer(*tls_stub(pki, gw.port(), "ca", "intruder")).ok());
  EXPECT_TRUE(wait_until([&] { return failures(gw, "bad_client_certificate") >= 1; }, 5s));
  EXPECT_FALSE(infer(*tls_stub(pki, gw.port(), "ca", "expired")).ok());
  EXPECT_TRUE(wait_until([&] { return failures(gw, "bad_client_certificate") >= 2; }, 5s));
  EXPECT_TRUE(gw.process().wait_for_line("certificate has expired", 2s).has_value());
}

// cert-manager rewrites the files; SIGHUP (or the change itself) loads the new pair for
// new connections, and a stream that began with the old one goes on.
TEST(Tls, CertificatesRotateWithoutARestartAndOpenStreamsGoOn) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-a");
  const std::string cert = pki.path("live.crt");
  const std::string key = pki.path("live.key");
  fs::copy_file(pki.path("server.crt"), cert);
  fs::copy_file(pki.path("server.key"), key);
  Gateway gw({{"sim-a", sim.address()}},
             "frontend:\n  tls:\n    cert: " + cert + "\n    key: " + key + "\n");
  auto old_client = tls_stub(pki, gw.port(), "ca");
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 30s);
  auto stream = old_client->ModelStreamInfer(&c);
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(stream->Write(identity_request(64, 1)));
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_TRUE(r.error_message().empty()) << r.error_message();

  // A pair that does not load (a key of another certificate) is refused; the old stays.
  fs::copy_file(pki.path("server2.crt"), cert, fs::copy_options::overwrite_existing);
  gw.process().signal(SIGHUP);
  EXPECT_TRUE(gw.process().wait_for_line("tls_reload_failed", 5s).has_value());
  EXPECT_TRUE(infer(*tls_stub(pki, gw.port(), "ca")).ok());

  // The matching key arrives: the change is noticed without a signal.
  fs::copy_file(pki.path("server2.key"), key, fs::copy_options::overwrite_existing);
  EXPECT_TRUE(wait_until([&] { return infer(*tls_stub(pki, gw.port(), "ca2")).ok(); }, 10s))
      << "new connections get the new certificate";
  EXPECT_FALSE(infer(*tls_stub(pki, gw.port(), "ca")).ok());
  // The stream that began before goes on with its connection's certificate.
  ASSERT_TRUE(stream->Write(identity_request(64, 2)));
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_TRUE(r.error_message().empty()) << r.error_message();
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// A backend behind TLS (Triton's --grpc-use-ssl): its probes, the data plane and the
// fan-out all reach it over TLS, its certificate checked against the configured CA.
TEST(Tls, ABackendBehindTlsIsProbedAndServedOverTls) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-tls", {"--tls-cert", pki.path("server.crt"), "--tls-key", pki.path("server.key")});
  Gateway gw(Gateway::WithKeys{},
             {{"sim-tls", sim.address(), {"tls: {ca: \"" + pki.path("ca.crt") + "\"}"}}}, "");
  auto stub = make_stub(gw.port());
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  const grpc::Status s = stub->ModelInfer(&c, identity_request(300000, 5), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(served_by(r), "sim-tls");
  EXPECT_EQ(r.raw_output_contents(0), identity_request(300000, 5).raw_input_contents(0));
  grpc::ClientContext sc;
  inference::ModelStatisticsResponse stats;
  const grpc::Status fan = stub->ModelStatistics(&sc, {}, &stats);
  ASSERT_TRUE(fan.ok()) << fan.error_message();
  EXPECT_EQ(stats.model_stats(0).inference_count(), 1u);
}

// A backend that accepts a connection and then never answers the TLS handshake: the
// handshake has upstream.connect_timeout, and the request fails with that reason instead
// of waiting for keepalive.
TEST(Tls, ABackendThatStallsTheHandshakeIsGivenUpOnWithinConnectTimeout) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-tls", {"--tls-cert", pki.path("server.crt"), "--tls-key", pki.path("server.key")});
  TcpRelay relay(sim.port());
  Gateway gw(Gateway::WithKeys{},
             {{"sim-tls",
               "127.0.0.1:" + std::to_string(relay.port()),
               {"tls: {ca: \"" + pki.path("ca.crt") + "\"}"}}},
             "upstream:\n  connect_timeout: 300ms\nrouting:\n  retries: 0\n");
  relay.set_silent(true);  // the probes' connection stays; new ones hear nothing
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 20s);
  inference::ModelInferResponse r;
  const auto start = std::chrono::steady_clock::now();
  const grpc::Status s = make_stub(gw.port())->ModelInfer(&c, identity_request(64, 1), &r);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("TLS handshake timed out"), std::string::npos)
      << s.error_message();
  EXPECT_LT(took, 10s) << "bounded by connect_timeout, not by keepalive or the deadline";
}

// A backend whose certificate the gateway does not trust is never used.
TEST(Tls, ABackendWhoseCertificateIsNotTrustedIsNotUsed) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-tls", {"--tls-cert", pki.path("server2.crt"), "--tls-key", pki.path("server2.key")});
  Gateway gw(Gateway::WithKeys{},
             {{"sim-tls", sim.address(), {"tls: {ca: \"" + pki.path("ca.crt") + "\"}"}}}, "", 2,
             /*wait_healthy=*/false);
  EXPECT_FALSE(wait_for_healthy(gw, 1, 2s)) << "its certificate is from another CA";
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  // Never probed successfully, so the gateway never learned what it serves.
  EXPECT_EQ(make_stub(gw.port())->ModelInfer(&c, identity_request(64, 1), &r).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// An https:// metrics_url is scraped over TLS, its certificate checked against the
// backend's tls.ca (here openssl s_server hands out the sim's own metrics page).
TEST(Tls, ABackendsMetricsAreScrapedOverHttps) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Sim sim("sim-tls", {"--tls-cert", pki.path("server.crt"), "--tls-key", pki.path("server.key")});
  std::ofstream(pki.path("metrics.txt")) << http_get(sim.metrics_port(), "/metrics");
  Process server("/bin/sh", {"-c", "cd " + pki.path("") +
                                       " && exec openssl s_server -accept 127.0.0.1:0 -cert "
                                       "server.crt -key server.key -WWW"});
  const int port = server.wait_for_port("ACCEPT 127.0.0.1:", 5s);
  ASSERT_GT(port, 0);
  Gateway gw(Gateway::WithKeys{},
             {{"sim-tls",
               sim.address(),
               {"tls: {ca: \"" + pki.path("ca.crt") + "\"}",
                "metrics_url: \"https://127.0.0.1:" + std::to_string(port) + "/metrics.txt\""}}},
             "health:\n  metrics_interval: 500ms\n  metrics_timeout: 500ms\n");
  EXPECT_TRUE(wait_until(
      [&] { return gw.metric("infergate_backend_metrics_fresh{backend=\"sim-tls\"}") == 1; }, 10s))
      << gw.metrics_text();
  EXPECT_EQ(gw.metric("infergate_backend_gpu_memory_total_bytes{backend=\"sim-tls\"}"),
            80.0 * (1ull << 30));
}

}  // namespace
}  // namespace infergate::testing
