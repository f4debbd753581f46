// auth.mode jwt through the gateway: tokens made by the test (keys generated now), every
// kind of bad one answered before anything reaches a backend, with its own code, message
// and counter; and the job a token names is the one its caps count.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/cluster.h"
#include "tests/support/fake_http_server.h"
#include "tests/support/jwt_issuer.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

class JwksFile {
 public:
  explicit JwksFile(const std::string& jwks) {
    char pattern[] = "/tmp/infergate-jwks-XXXXXX";
    ::close(::mkstemp(pattern));
    path_ = pattern;
    std::ofstream(path_) << jwks;
  }
  ~JwksFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string jwt_auth(const JwtIssuer& issuer, const JwksFile& jwks, const std::string& more = "") {
  return "auth:\n  mode: jwt\n  required_scope: compute.read\n  issuers:\n    - issuer: " +
         issuer.issuer() + "\n      jwks_file: " + jwks.path() +
         "\n      audience: infergate\n      group: cms\n" + more;
}

grpc::Status infer(int port, const std::string& token, const std::string& job = "") {
  return infer_with_token(port, token, job);
}

std::uint64_t inferences(const Sim& sim) {
  grpc::ClientContext c;
  inference::ModelStatisticsResponse stats;
  auto status = inference::GRPCInferenceService::NewStub(make_channel(sim.port()))
                    ->ModelStatistics(&c, {}, &stats);
  return status.ok() && stats.model_stats_size() > 0 ? stats.model_stats(0).inference_count() : 0;
}

TEST(JwtAuth, EachBadTokenIsRefusedWithItsReasonBeforeABackendSeesIt) {
  JwtIssuer issuer("https://cms-auth.test/");
  JwtIssuer stranger("https://elsewhere.test/");
  JwtIssuer forger(issuer.issuer());
  JwksFile jwks(issuer.jwks());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, jwt_auth(issuer, jwks));

  const std::string valid = issuer.token({.sub = "alice"});
  ASSERT_TRUE(infer(gw.port(), valid).ok());
  ASSERT_TRUE(infer(gw.port(), issuer.token({.sub = "bob", .alg = "ES256"})).ok());

  struct Case {
    std::string name;
    std::string token;
    grpc::StatusCode code;
    std::string says;    // in the message
    std::string reason;  // infergate_auth_failures_total{reason}
  };
  const std::vector<Case> cases = {
      {"no token", "", grpc::StatusCode::UNAUTHENTICATED, "no bearer token", "no_token"},
      {"expired", issuer.token({.lifetime_seconds = -30}), grpc::StatusCode::UNAUTHENTICATED,
       "expired", "expired"},
      {"wrong audience", issuer.token({.aud = "someone-else"}), grpc::StatusCode::UNAUTHENTICATED,
       "audience (someone-else)", "wrong_audience"},
      {"wrong issuer", stranger.token({}), grpc::StatusCode::UNAUTHENTICATED,
       "https://elsewhere.test/", "unknown_issuer"},
      {"bad signature", with_bad_signature(valid), grpc::StatusCode::UNAUTHENTICATED,
       "does not verify", "bad_signature"},
      {"forged", forger.token({}), grpc::StatusCode::UNAUTHENTICATED, "does not verify",
       "bad_signature"},
      {"no scope", issuer.token({.scope = ""}), grpc::StatusCode::PERMISSION_DENIED,
       "does not grant compute.read", "missing_scope"},
      {"alg none", issuer.unsigned_token({}), grpc::StatusCode::UNAUTHENTICATED,
       "algorithm \"none\"", "bad_signature"},
      {"not a JWT", "hello", grpc::StatusCode::UNAUTHENTICATED, "not a JWT", "malformed_token"},
  };
  for (const Case& c : cases) {
    const grpc::Status s = infer(gw.port(), c.token);
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_TRUE(s.error_message().starts_with("infergate: ")) << c.name;
    EXPECT_NE(s.error_message().find(c.says), std::string::npos)
        << c.name << ": " << s.error_message();
  }
  EXPECT_EQ(inferences(sim), 2u) << "only the two valid requests reached the backend";
  EXPECT_TRUE(wait_until(
      [&] {
        return gw.metric("infergate_auth_failures_total{reason=\"bad_signature\"}") == 3 &&
               gw.metric("infergate_auth_failures_total{reason=\"expired\"}") == 1 &&
               gw.metric("infergate_auth_failures_total{reason=\"wrong_audience\"}") == 1 &&
               gw.metric("infergate_auth_failures_total{reason=\"unknown_issuer\"}") == 1 &&
               gw.metric("infergate_auth_failures_total{reason=\"missing_scope\"}") == 1 &&
               gw.metric("infergate_auth_failures_total{reason=\"malformed_token\"}") == 1 &&
               gw.metric("infergate_auth_failures_total{reason=\"no_token\"}") == 1;
      },
      5s))
      << gw.metrics_text();
  // Health needs no token (Kubernetes' probes); no token ever reaches the log.
  grpc::ClientContext live;
  inference::ServerLiveResponse alive;
  EXPECT_TRUE(make_stub(gw.port())->ServerLive(&live, {}, &alive).ok());
  const std::string signature = valid.substr(valid.rfind('.') + 1);
  for (const std::string& line : gw.process().lines()) {
    EXPECT_EQ(line.find(signature.substr(0, 24)), std::string::npos) << line;
  }
}

// What the gateway remembers of an accepted token (per connection, per token) lasts as long
// as the token and as the keys that accepted it: a token that expires mid-connection is
// refused from then on, and so is one whose issuer's keys were replaced (SIGHUP).
TEST(JwtAuth, RememberedTokensLastNoLongerThanTheTokenOrItsKeys) {
  JwtIssuer issuer("https://cms-auth.test/");
  JwksFile jwks(issuer.jwks());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, jwt_auth(issuer, jwks));
  auto stub = make_stub(gw.port());  // one connection for every call below
  auto call = [&](const std::string& token) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 5s);
    c.AddMetadata("authorization", "Bearer " + token);
    inference::ModelInferResponse r;
    return stub->ModelInfer(&c, identity_request(64, 1), &r);
  };
  // exp is whole seconds: a lifetime of 3 leaves the two calls at least 2 s (a loaded
  // sanitizer run's first calls can take a good part of one).
  const std::string brief = issuer.token({.sub = "brief", .lifetime_seconds = 3});
  ASSERT_TRUE(call(brief).ok());
  ASSERT_TRUE(call(brief).ok());
  grpc::Status late;
  EXPECT_TRUE(wait_until([&] { return !(late = call(brief)).ok(); }, 8s));
  EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(late.error_message().find("expired"), std::string::npos) << late.error_message();

  const std::string token = issuer.token({});
  ASSERT_TRUE(call(token).ok());
  JwtIssuer rotated(issuer.issuer());
  std::ofstream(jwks.path()) << rotated.jwks();
  gw.process().signal(SIGHUP);
  ASSERT_TRUE(gw.process().wait_for_line("reloaded", 5s).has_value());
  const grpc::Status after = call(token);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "signed with a retired key";
  EXPECT_TRUE(call(rotated.token({})).ok());
}

// The credential is the gateway's business: it is not passed on to the backends (a
// token lent to every Triton in the fleet is a token leaked to all of them).
TEST(JwtAuth, TheTokenIsNotForwardedToTheBackend) {
  JwtIssuer issuer("https://cms-auth.test/");
  JwksFile jwks(issuer.jwks());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, jwt_auth(issuer, jwks));
  auto saw_token = [](int port, const std::string& token) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 5s);
    if (!token.empty()) c.AddMetadata("authorization", "Bearer " + token);
    inference::ModelInferResponse r;
    EXPECT_TRUE(make_stub(port)->ModelInfer(&c, identity_request(64, 1), &r).ok());
    return c.GetServerTrailingMetadata().count("sim-saw-authorization") != 0;
  };
  EXPECT_TRUE(saw_token(sim.port(), "direct")) << "the sim tells when it sees one";
  EXPECT_FALSE(saw_token(gw.port(), issuer.token({})));
}

// The job is the token's subject: the infergate-job header narrows it ("alice/reco"), and
// can never make bob's requests count as alice's job.
TEST(JwtAuth, JobCapsCountTokenSubjectsAndTheHeaderCannotEscapeThem) {
  JwtIssuer issuer("https://cms-auth.test/");
  JwksFile jwks(issuer.jwks());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             jwt_auth(issuer, jwks) + "limits:\n  max_jobs: 1\n  job_idle_timeout: 60s\n");
  const std::string alice = issuer.token({.sub = "alice"});
  const std::string bob = issuer.token({.sub = "bob"});
  ASSERT_TRUE(infer(gw.port(), alice).ok());
  ASSERT_TRUE(infer(gw.port(), alice).ok()) << "the same job again";
  const grpc::Status b = infer(gw.port(), bob);
  EXPECT_EQ(b.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << b.error_message();
  const grpc::Status posing = infer(gw.port(), bob, "alice");
  EXPECT_EQ(posing.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << posing.error_message();
  // Another token of alice's (a renewed one) is still alice's job.
  EXPECT_TRUE(infer(gw.port(), issuer.token({.sub = "alice", .alg = "ES256"})).ok());
}

// jwks_url: the keys come from the issuer, fetched on the control thread; a failed fetch
// is retried and logged, a key rotation at the issuer reaches the gateway.
TEST(JwtAuth, KeysAreFetchedFromTheIssuersUrlAndFollowItsRotation) {
  JwtIssuer issuer("https://cms-auth.test/");
  FakeHttpServer keys("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  Sim sim("sim-a");
  Gateway gw(
      {{"sim-a", sim.address()}},
      "auth:\n  mode: jwt\n  jwks_refresh: 1s\n  issuers:\n    - issuer: " + issuer.issuer() +
          "\n      jwks_url: http://127.0.0.1:" + std::to_string(keys.port()) + "/jwk\n");
  ASSERT_TRUE(gw.process().wait_for_line("jwks_fetch_failed", 5s).has_value());
  const grpc::Status before = infer(gw.port(), issuer.token({}));
  EXPECT_EQ(before.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(before.error_message().find("no keys"), std::string::npos) << before.error_message();

  keys.set_answer(FakeHttpServer::ok(issuer.jwks()));
  EXPECT_TRUE(wait_until([&] { return infer(gw.port(), issuer.token({})).ok(); }, 10s));
  EXPECT_NE(keys.last_request().find("GET /jwk HTTP/1.1"), std::string::npos);

  // The issuer rotates its keys: tokens signed with the new ones are accepted once the
  // gateway has fetched them, and the old ones no longer are.
  JwtIssuer rotated(issuer.issuer());
  keys.set_answer(FakeHttpServer::ok(rotated.jwks()));
  EXPECT_TRUE(wait_until([&] { return infer(gw.port(), rotated.token({})).ok(); }, 10s));
  EXPECT_EQ(infer(gw.port(), issuer.token({})).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A set that does not load keeps the last good one.
  keys.set_answer(FakeHttpServer::ok("{\"keys\": \"nope\"}"));
  ASSERT_TRUE(gw.process().wait_for_line("the last ones stay", 10s).has_value());
  EXPECT_TRUE(infer(gw.port(), rotated.token({.sub = "carol"})).ok());
}

// https:// jwks_url: the server's certificate is checked against jwks_ca.
TEST(JwtAuth, KeysComeOverHttpsFromAServerTheGatewayTrusts) {
  JwtIssuer issuer("https://cms-auth.test/");
  char pattern[] = "/tmp/infergate-jwks-https-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  ASSERT_TRUE(make_self_signed_certificate(dir, "cert"));
  std::ofstream(dir + "/jwks.json") << issuer.jwks();
  Process server("/bin/sh",
                 {"-c", "cd " + dir +
                            " && exec openssl s_server -accept 127.0.0.1:0 -cert cert.crt "
                            "-key cert.key -WWW"});
  const int port = server.wait_for_port("ACCEPT 127.0.0.1:", 5s);
  ASSERT_GT(port, 0);
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             "auth:\n  mode: jwt\n  issuers:\n    - issuer: " + issuer.issuer() +
                 "\n      jwks_url: https://127.0.0.1:" + std::to_string(port) +
                 "/jwks.json\n      jwks_ca: " + dir + "/cert.crt\n");
  ASSERT_TRUE(gw.process().wait_for_line("jwks_fetched", 5s).has_value());
  EXPECT_TRUE(infer(gw.port(), issuer.token({})).ok());
  // Without jwks_ca the system's CAs do not vouch for that server: no keys from it.
  Gateway doubter({{"sim-a", sim.address()}},
                  "auth:\n  mode: jwt\n  issuers:\n    - issuer: " + issuer.issuer() +
                      "\n      jwks_url: https://127.0.0.1:" + std::to_string(port) +
                      "/jwks.json\n");
  EXPECT_TRUE(doubter.process().wait_for_line("certificate verify failed", 5s).has_value());
  EXPECT_EQ(infer(doubter.port(), issuer.token({})).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace infergate::testing
