#include "gateway/fleet/fanout.h"

#include <mutex>

namespace infergate::gateway {
namespace {

std::chrono::system_clock::time_point deadline(std::chrono::nanoseconds timeout) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout);
}

// Collects one answer per target and reports when the last arrives.
template <typename Response>
struct Gather {
  std::mutex mu;
  size_t pending = 0;
  std::vector<Response> answers;
  std::vector<std::string> failures;  // "name: message"
  grpc::Status first_error;
  std::function<void(Gather&)> finish;

  void record(const std::string& name, const grpc::Status& s, Response&& r) {
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) {
        answers.push_back(std::move(r));
      } else {
        if (failures.empty()) first_error = s;
        failures.push_back(name + ": " + s.error_message());
      }
      last = --pending == 0;
    }
    if (last) finish(*this);
  }
};

// `invoke(async, context, request, response, callback)` starts one call.
template <typename Request, typename Response, typename Invoke>
void call_all(health::BackendChannels& channels, const std::vector<FanOutTarget>& targets,
              const Request& request, std::chrono::nanoseconds timeout, Invoke invoke,
              std::function<void(Gather<Response>&)> finish) {
  auto gather = std::make_shared<Gather<Response>>();
  gather->pending = targets.size();
  gather->finish = std::move(finish);
  if (targets.empty()) return gather->finish(*gather);
  for (const FanOutTarget& t : targets) {
    auto stub = channels.stub(t.id);
    if (!stub) {
      gather->record(t.name, grpc::Status(grpc::StatusCode::UNAVAILABLE, "no channel"), {});
      continue;
    }
    struct Call {
      grpc::ClientContext context;
      Request request;
      Response response;
    };
    auto call = std::make_shared<Call>();
    call->request = request;
    call->context.set_deadline(deadline(timeout));
    invoke(stub->async(), &call->context, &call->request, &call->response,
           [gather, call, stub, name = t.name](grpc::Status s) {
             gather->record(name, s, std::move(call->response));
           });
  }
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

void FanOut::statistics(const std::vector<FanOutTarget>& targets,
                        const inference::ModelStatisticsRequest& request,
                        std::chrono::nanoseconds timeout, StatisticsDone done) {
  using Response = inference::ModelStatisticsResponse;
  call_all<inference::ModelStatisticsRequest, Response>(
      *channels_, targets, request, timeout,
      [](auto* async, auto* c, auto* q, auto* r, auto cb) {
        async->ModelStatistics(c, q, r, std::move(cb));
      },
      [done = std::move(done)](Gather<Response>& g) {
        if (g.answers.empty() && !g.failures.empty()) {
          return done(
              grpc::Status(g.first_error.error_code(),
                           "infergate: statistics failed on every backend: " + joined(g.failures)),
              {});
        }
        done(grpc::Status::OK, std::move(g.answers));
      });
}

void FanOut::load(const std::vector<FanOutTarget>& targets,
                  const inference::RepositoryModelLoadRequest& request,
                  std::chrono::nanoseconds timeout, Done done) {
  using Response = inference::RepositoryModelLoadResponse;
  call_all<inference::RepositoryModelLoadRequest, Response>(
      *channels_, targets, request, timeout,
      [](auto* async, auto* c, auto* q, auto* r, auto cb) {
        async->RepositoryModelLoad(c, q, r, std::move(cb));
      },
      [done = std::move(done)](Gather<Response>& g) {
        if (g.failures.empty()) return done(grpc::Status::OK);
        done(grpc::Status(g.first_error.error_code(),
                          "infergate: load failed on " + joined(g.failures)));
      });
}

void FanOut::unload(const std::vector<FanOutTarget>& targets,
                    const inference::RepositoryModelUnloadRequest& request,
                    std::chrono::nanoseconds timeout, Done done) {
  using Response = inference::RepositoryModelUnloadResponse;
  call_all<inference::RepositoryModelUnloadRequest, Response>(
      *channels_, targets, request, timeout,
      [](auto* async, auto* c, auto* q, auto* r, auto cb) {
        async->RepositoryModelUnload(c, q, r, std::move(cb));
      },
      [done = std::move(done)](Gather<Response>& g) {
        if (g.failures.empty()) return done(grpc::Status::OK);
        done(grpc::Status(g.first_error.error_code(),
                          "infergate: unload failed on " + joined(g.failures)));
      });
}

}  // namespace infergate::gateway
