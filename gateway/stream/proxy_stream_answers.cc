// ProxyStream: requests the gateway answers itself, from its view of the fleet or by
// asking several backends, instead of forwarding them to one.
#include <google/protobuf/message.h>

#include <boost/asio/post.hpp>

#include "gateway/fleet/fanout.h"
#include "gateway/fleet/fleet_answers.h"
#include "gateway/stream/proxy_stream.h"
#include "gateway/version.h"
#include "gateway/worker.h"
#include "grpc/health/v1/health.pb.h"

namespace infergate::gateway {

bool ProxyStream::whole_message(std::string& out) {
  out.clear();
  if (request_.empty()) return true;  // no message at all parses as an empty one
  const std::uint64_t cap = worker_.options().max_control_message_bytes;
  std::uint8_t raw[kGrpcPrefixBytes];
  GrpcPrefix prefix;
  if (!request_.copy_out(0, raw) || !decode_grpc_prefix(raw, prefix)) {
    reply_local(GrpcCode::kInternal, "infergate: malformed gRPC message");
    return false;
  }
  if (prefix.length > cap) {
    refuse_over_cap("the " + std::string(method_info(method_).name) + " request",
                    "limits.max_control_message_bytes", cap);
    return false;
  }
  if (request_.size() < kGrpcPrefixBytes + prefix.length) {
    reply_local(GrpcCode::kInternal, "infergate: malformed gRPC message");
    return false;
  }
  out.resize(prefix.length);
  request_.copy_out(kGrpcPrefixBytes, {reinterpret_cast<std::uint8_t*>(out.data()), out.size()});
  if (!prefix.compressed) return true;
  PrefixInflater inflater;
  if (!inflater.feed({reinterpret_cast<const std::uint8_t*>(out.data()), out.size()}, cap)) {
    reply_local(GrpcCode::kInternal, "infergate: cannot inflate the request");
    return false;
  }
  if (!inflater.finished()) {
    if (inflater.output().size() >= cap) {
      refuse_over_cap("the inflated " + std::string(method_info(method_).name) + " request",
                      "limits.max_control_message_bytes", cap);
    } else {
      reply_local(GrpcCode::kInternal, "infergate: cannot inflate the request");
    }
    return false;
  }
  out = inflater.output();
  return true;
}

void ProxyStream::append_response_message(const google::protobuf::Message& message, ByteQueue& to) {
  const std::string body = message.SerializeAsString();
  std::uint8_t prefix[kGrpcPrefixBytes];
  encode_grpc_prefix({.compressed = false, .length = static_cast<std::uint32_t>(body.size())},
                     prefix);
  to.append(prefix);
  to.append({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
}

void ProxyStream::send_own_headers() {
  // The gateway's own answer: it says which gateway made it.
  const nghttp2_nv headers[] = {make_nv(":status", "200"),
                                make_nv("content-type", "application/grpc"),
                                make_nv("infergate-version", kVersion)};
  down_->send_headers(down_id_, headers, /*body_follows=*/true);
  response_started_ = true;
}

void ProxyStream::reply_message(const google::protobuf::Message& message) {
  status_ = GrpcCode::kOk;
  status_known_ = true;
  if (down_ == nullptr || response_started_) return;
  append_response_message(message, response_);
  local_trailers_ = {{"grpc-status", "0"}};
  enter(Phase::kAnswered);
  send_own_headers();
  discard_request();
  down_->flush_later();
}

bool ProxyStream::answer_in_stream(const std::string& message) {
  if (!per_message() || down_ == nullptr || phase_ == Phase::kAnswered ||
      request_headers_.find("triton_grpc_error") == "true") {
    return false;
  }
  std::uint8_t raw[kGrpcPrefixBytes];
  GrpcPrefix prefix;
  if (!request_.copy_out(0, raw) || !decode_grpc_prefix(raw, prefix)) return false;
  release_admission();  // it was charged as a request, and goes nowhere
  inference::ModelStreamInferResponse r;
  r.set_error_message(message);
  r.mutable_infer_response()->set_id(pending_id_);
  r.mutable_infer_response()->set_model_name(model_);
  r.mutable_infer_response()->set_model_version(version_);
  queue_own_answer(r);
  // The stream goes on: the refused message is dropped as its bytes come, and the next
  // one is routed afresh (the one way back from kAdmission to kRouting).
  skip_request_bytes_ = kGrpcPrefixBytes + std::uint64_t{prefix.length};
  unrouted_from_ = request_received_ - request_.size() + skip_request_bytes_;
  skip_refused_message();
  credit_received();
  next_message();
  return true;
}

void ProxyStream::route_next_message() {
  if (routing_loop_) {
    route_again_ = true;  // try_route's loop goes on with it
    return;
  }
  // From a fresh event: a window full of bad messages must not recurse, and a refusal made
  // from a wake-up (parked, admitted) has no arriving bytes to carry the stream on.
  boost::asio::post(worker_.io(), [this, alive = link()] {
    if (!alive.alive()) return;
    try_route();
    worker_.flush_dirty();
  });
}

void ProxyStream::skip_refused_message() {
  const size_t n = std::min<std::uint64_t>(skip_request_bytes_, request_.size());
  request_.drop_front(n);
  skip_request_bytes_ -= n;
}

namespace {

template <typename T>
bool parse(const std::string& bytes, T& out) {
  return out.ParseFromString(bytes);
}

}  // namespace

void ProxyStream::answer_from_fleet(const std::string& message) {
  const routing::Fleet& fleet = *fleet_;
  auto bad = [&] {
    reply_local(GrpcCode::kInternal,
                "infergate: malformed " + std::string(method_info(method_).name) + " request");
  };
  switch (method_) {
    case Method::kServerLive: {
      inference::ServerLiveResponse r;
      r.set_live(true);  // the gateway answers: it is up
      return reply_message(r);
    }
    case Method::kServerReady:
      return reply_message(fleet_server_ready(fleet));
    case Method::kModelReady: {
      inference::ModelReadyRequest q;
      if (!parse(message, q)) return bad();
      return reply_message(fleet_model_ready(fleet, q));
    }
    case Method::kRepositoryIndex: {
      inference::RepositoryIndexRequest q;
      if (!parse(message, q)) return bad();
      return reply_message(fleet_repository_index(fleet, q.ready()));
    }
    case Method::kServerMetadata:
      return reply_message(fleet_server_metadata(fleet));
    case Method::kHealthCheck: {
      grpc::health::v1::HealthCheckRequest q;
      if (!parse(message, q)) return bad();
      grpc::health::v1::HealthCheckResponse r;
      r.set_status(fleet.healthy_count() > 0 ? grpc::health::v1::HealthCheckResponse::SERVING
                                             : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
      return reply_message(r);
    }
    default:
      return reply_local(GrpcCode::kInternal, "infergate: no fleet answer for this method");
  }
}

void ProxyStream::fan_out(const std::string& message) {
  const routing::Fleet& fleet = *fleet_;
  const RoutingOptions& routing = worker_.routing();
  std::vector<FanOutTarget> targets;
  // The client's own deadline bounds the fan-out; without one, a generous default.
  std::chrono::nanoseconds timeout = routing.fanout_timeout;
  if (auto t = parse_grpc_timeout(request_headers_.find("grpc-timeout"))) timeout = *t;
  // The answer arrives on a gRPC thread; it is applied on this worker, if the stream is
  // still there (and nothing is posted once it is gone: the worker may be too).
  auto deliver = [alive = link(), self = this](auto apply) {
    alive.post_if_alive([self, apply = std::move(apply)]() mutable { apply(self); });
  };
  if (method_ == Method::kModelStatistics) {
    inference::ModelStatisticsRequest q;
    if (!parse(message, q)) {
      return reply_local(GrpcCode::kInternal, "infergate: malformed ModelStatistics");
    }
    model_ = q.name();
    version_ = q.version();
    const auto& positions = model_.empty() ? fleet.routable() : fleet.candidates(model_, version_);
    if (positions.empty()) {
      return reply_no_backend(model_.empty() || fleet.known(model_)
                                  ? routing::PickResult::Status::kUnavailable
                                  : routing::PickResult::Status::kNotFound);
    }
    for (std::uint32_t p : positions) {
      targets.push_back({fleet.backends()[p].id, fleet.backends()[p].name});
    }
    worker_.shared().fanout->statistics(
        targets, q, timeout, [deliver](grpc::Status s, auto answers) mutable {
          deliver([s, answers = std::move(answers)](ProxyStream* stream) {
            if (!s.ok()) {
              return stream->reply_local(static_cast<GrpcCode>(s.error_code()), s.error_message());
            }
            stream->reply_message(merge_statistics(answers));
          });
        });
    return;
  }
  // Repository load and unload change what every backend serves: all of them, or none.
  if (!routing.allow_repository_control) {
    // As Triton refuses them when its model control is not explicit.
    return reply_local(GrpcCode::kUnavailable,
                       "infergate: explicit model load / unload is not allowed through this "
                       "gateway (allow_repository_control: false)");
  }
  for (const routing::BackendInfo& b : fleet.backends()) {
    if (b.state != routing::BackendState::kDraining) targets.push_back({b.id, b.name});
  }
  // The answer waits until the gateway's inventory shows what was just done (published
  // to every worker before the answer is posted to this one): the next ModelReady or
  // inference agrees with it.
  auto done = [deliver, refresh = worker_.shared().refresh_inventory](grpc::Status s) mutable {
    auto reply = [deliver, s]() mutable {
      deliver([s](ProxyStream* stream) {
        if (!s.ok()) {
          return stream->reply_local(static_cast<GrpcCode>(s.error_code()), s.error_message());
        }
        if (stream->method_ == Method::kRepositoryModelLoad) {
          return stream->reply_message(inference::RepositoryModelLoadResponse());
        }
        stream->reply_message(inference::RepositoryModelUnloadResponse());
      });
    };
    if (refresh) return refresh(std::move(reply));
    reply();
  };
  if (method_ == Method::kRepositoryModelLoad) {
    inference::RepositoryModelLoadRequest q;
    if (!parse(message, q)) {
      return reply_local(GrpcCode::kInternal, "infergate: malformed RepositoryModelLoad");
    }
    return worker_.shared().fanout->load(targets, q, timeout, std::move(done));
  }
  inference::RepositoryModelUnloadRequest q;
  if (!parse(message, q)) {
    return reply_local(GrpcCode::kInternal, "infergate: malformed RepositoryModelUnload");
  }
  worker_.shared().fanout->unload(targets, q, timeout, std::move(done));
}

}  // namespace infergate::gateway
