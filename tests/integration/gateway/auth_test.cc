// auth.mode token: who is calling is a bearer token whose SHA-256 the gateway lists;
// refused before anything reaches a backend, counted, and the job is the token's.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// SHA-256 of "secret-a" and "secret-b": the file lists hashes, never tokens.
constexpr const char* kHashA = "8766b9cb08e6040b704f1e3ee1e186efccf2635b1d2634d6525333007e6aeae1";
constexpr const char* kHashB = "ff492ef788c89b555e6f738b33d2422f57dbb6656af2402155672c5f123a90af";

class TokensFile {
 public:
  TokensFile() {
    char pattern[] = "/tmp/infergate-tokens-XXXXXX";
    const int fd = ::mkstemp(pattern);
    ::close(fd);
    path_ = pattern;
    std::ofstream(path_) << "# hash group\n" << kHashA << " cms\n" << kHashB << " atlas\n";
  }
  ~TokensFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

grpc::Status infer(int port, const std::string& token, const std::string& job = "") {
  return infer_with_token(port, token, job);
}

TEST(Auth, TokensAreCheckedBeforeAnythingReachesABackend) {
  TokensFile tokens;
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             "auth:\n  mode: token\n  tokens_file: " + tokens.path() + "\n");
  grpc::Status s = infer(gw.port(), "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "infergate: no bearer token (metadata authorization: Bearer ...)");
  s = infer(gw.port(), "secret-c");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "infergate: the bearer token is not known here");
  s = infer(gw.port(), "secret-a");
  EXPECT_TRUE(s.ok()) << s.error_message();
  // Kubernetes' probes need no token.
  grpc::ClientContext live;
  inference::ServerLiveResponse alive;
  EXPECT_TRUE(make_stub(gw.port())->ServerLive(&live, {}, &alive).ok());
  // Only the authenticated request reached the backend.
  grpc::ClientContext direct;
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(inference::GRPCInferenceService::NewStub(make_channel(sim.port()))
                  ->ModelStatistics(&direct, {}, &stats)
                  .ok());
  EXPECT_EQ(stats.model_stats(0).inference_count(), 1u);
  EXPECT_TRUE(wait_until(
      [&] {
        return gw.metric("infergate_auth_failures_total{reason=\"no_token\"}") == 1 &&
               gw.metric("infergate_auth_failures_total{reason=\"unknown_token\"}") == 1;
      },
      5s))
      << gw.metrics_text();
  // No token value ever reaches the log.
  for (const std::string& line : gw.process().lines()) {
    EXPECT_EQ(line.find("secret-"), std::string::npos) << line;
  }
}

// The job is the token's: the infergate-job header may narrow it, never replace it, so
// a job cap cannot be escaped by naming another token's job.
TEST(Auth, TheJobHeaderCannotEscapeTheTokensJob) {
  TokensFile tokens;
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, "auth:\n  mode: token\n  tokens_file: " + tokens.path() +
                                             "\nlimits:\n  max_jobs: 1\n  job_idle_timeout: 60s\n");
  ASSERT_TRUE(infer(gw.port(), "secret-a").ok());
  const std::string jobA = std::string("cms/") + std::string(kHashA).substr(0, 8);
  const grpc::Status posing = infer(gw.port(), "secret-b", jobA);
  EXPECT_EQ(posing.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << posing.error_message();
  EXPECT_TRUE(infer(gw.port(), "secret-a", "").ok()) << "token A's own job goes on";
}

// limits.groups: the callers of one group share its caps, whatever their jobs are called,
// and another group is not held back by them.
TEST(Auth, AGroupsJobCapHoldsForEveryJobItsTokensName) {
  TokensFile tokens;
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             "auth:\n  mode: token\n  tokens_file: " + tokens.path() +
                 "\nlimits:\n  groups:\n    - {name: cms, max_jobs: 1}\n");
  ASSERT_TRUE(infer(gw.port(), "secret-a", "reco").ok());
  const grpc::Status second = infer(gw.port(), "secret-a", "analysis");
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(second.error_message().find("too many active jobs of group cms"), std::string::npos)
      << second.error_message();
  EXPECT_TRUE(infer(gw.port(), "secret-a", "reco").ok()) << "the admitted job goes on";
  EXPECT_TRUE(infer(gw.port(), "secret-b", "analysis").ok()) << "atlas is not cms";
  EXPECT_TRUE(infer(gw.port(), "secret-b", "reco").ok());
  EXPECT_TRUE(wait_until(
      [&] {
        return gw.metric("infergate_admission_rejections_total{limit=\"groups.max_jobs\"}") == 1;
      },
      5s))
      << gw.metrics_text();
}

TEST(Auth, HealthMayRequireATokenToo) {
  TokensFile tokens;
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, "auth:\n  mode: token\n  tokens_file: " + tokens.path() +
                                             "\n  allow_unauthenticated_health: false\n");
  grpc::ClientContext live;
  inference::ServerLiveResponse alive;
  EXPECT_EQ(make_stub(gw.port())->ServerLive(&live, {}, &alive).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace infergate::testing
