// ProxyStream: from the request's headers and first message to a backend stream.
#include <algorithm>
#include <string>

#include "gateway/downstream_connection.h"
#include "gateway/proxy_stream.h"
#include "gateway/upstream_connection.h"
#include "gateway/upstream_pool.h"
#include "gateway/worker.h"

namespace infergate::gateway {
namespace {

// How much of a compressed message is inflated at first for the scan.
constexpr size_t kInitialInflateBytes = 64 * 1024;

std::string method_label(Method method) { return std::string(method_info(method).name); }

}  // namespace

void ProxyStream::start_routing() {
  if (down_ == nullptr) return;
  if (headers_too_large_) {
    return reply_local(GrpcCode::kResourceExhausted,
                       "infergate: request headers exceed 128 fields or 64 KiB");
  }
  if (request_headers_.find(":method") != "POST") return reply_http(405);
  if (!request_headers_.find("content-type").starts_with("application/grpc")) {
    return reply_http(415);
  }
  const std::string_view path = request_headers_.find(":path");
  method_ = method_from_path(path);
  const MethodInfo& info = method_info(method_);
  if (method_ == Method::kUnknown) {
    return reply_local(GrpcCode::kUnimplemented, "infergate: unknown method " + std::string(path));
  }
  if (info.shared_memory) {
    return reply_local(GrpcCode::kFailedPrecondition,
                       "infergate: shared memory cannot cross the gateway: the client and the "
                       "Triton servers behind it are on different hosts; send tensors in the "
                       "request instead");
  }
  try_route();
}

void ProxyStream::try_route() {
  if (routed_ || down_ == nullptr || response_ended_ || method_ == Method::kUnknown) return;
  const MethodInfo& info = method_info(method_);
  if (info.model_field == 0 && !info.scan_prefix) return dispatch(RequestView{});
  scan_first_message();
}

void ProxyStream::scan_first_message() {
  const DataPlaneOptions& options = worker_.options();
  const MethodInfo& info = method_info(method_);
  if (request_.size() < kGrpcPrefixBytes) {
    if (!request_ended_) return;
    if (request_.empty()) return dispatch(RequestView{});  // the backend will judge it
    return reply_local(GrpcCode::kInvalidArgument,
                       "infergate: request ends inside a gRPC message prefix");
  }
  std::uint8_t raw[kGrpcPrefixBytes];
  request_.copy_out(0, raw);
  GrpcPrefix prefix;
  if (!decode_grpc_prefix(raw, prefix)) {
    return reply_local(GrpcCode::kInvalidArgument,
                       "infergate: malformed gRPC message prefix (compressed flag is not 0 or 1)");
  }
  if (prefix.length > kMaxGrpcMessageBytes) {
    return reply_local(GrpcCode::kResourceExhausted, "infergate: message of " +
                                                         std::to_string(prefix.length) +
                                                         " bytes exceeds the 2 GiB limit");
  }
  const size_t available = std::min<size_t>(request_.size() - kGrpcPrefixBytes, prefix.length);
  const bool complete = available == prefix.length;
  if (!complete && request_ended_) {
    return reply_local(GrpcCode::kInvalidArgument,
                       "infergate: request ends inside its first message");
  }
  const bool whole_needed = need_whole_ || !info.scan_prefix;
  if (!complete) {
    if (whole_needed && prefix.length > options.max_reorder_buffer_bytes) {
      return reply_local(GrpcCode::kResourceExhausted,
                         "infergate: " + method_label(method_) +
                             " request is out of canonical field order and too large (" +
                             std::to_string(prefix.length) + " bytes) to buffer for routing");
    }
    if (whole_needed || available < next_scan_at_) return;
  }

  ScanLayout layout{.model_field = info.model_field,
                    .version_field = info.model_field == 1 ? 2 : 0,
                    .infer_fields = info.scan_prefix,
                    .stop_field = info.scan_prefix ? 5 : 0};
  std::span<const std::uint8_t> body;
  bool body_complete = complete;
  if (prefix.compressed) {
    const Encoding encoding = parse_encoding(request_headers_.find("grpc-encoding"));
    if (encoding == Encoding::kIdentity) {
      return reply_local(GrpcCode::kInvalidArgument,
                         "infergate: compressed message without a grpc-encoding header");
    }
    if (encoding == Encoding::kUnsupported) {
      return reply_local(GrpcCode::kUnimplemented,
                         "infergate: grpc-encoding '" +
                             std::string(request_headers_.find("grpc-encoding")) +
                             "' is not supported (gzip, deflate)");
    }
    if (!inflater_) inflater_ = std::make_unique<PrefixInflater>();
    // Feed the compressed bytes not yet consumed; stop inflating once enough is out.
    const size_t from = inflater_->consumed();
    scratch_.resize(available - from);
    request_.copy_out(kGrpcPrefixBytes + from,
                      {reinterpret_cast<std::uint8_t*>(scratch_.data()), scratch_.size()});
    const size_t want = whole_needed
                            ? options.max_reorder_buffer_bytes
                            : std::max(kInitialInflateBytes, 2 * inflater_->output().size());
    if (!inflater_->feed({reinterpret_cast<const std::uint8_t*>(scratch_.data()), scratch_.size()},
                         want)) {
      return reply_local(
          GrpcCode::kInvalidArgument,
          std::string("infergate: cannot inflate the request: ") + inflater_->error());
    }
    body = {reinterpret_cast<const std::uint8_t*>(inflater_->output().data()),
            inflater_->output().size()};
    body_complete = inflater_->finished();
    if (complete && !body_complete && inflater_->consumed() == available) {
      return reply_local(GrpcCode::kInvalidArgument,
                         "infergate: compressed message ends before its compressed stream");
    }
  } else {
    body = request_.contiguous(kGrpcPrefixBytes, available);
    if (body.size() != available) {
      scratch_.resize(available);
      request_.copy_out(kGrpcPrefixBytes,
                        {reinterpret_cast<std::uint8_t*>(scratch_.data()), scratch_.size()});
      body = {reinterpret_cast<const std::uint8_t*>(scratch_.data()), scratch_.size()};
    }
  }

  const ScanResult result = scan_request(body, body_complete, layout);
  switch (result.status) {
    case ScanStatus::kDone:
      return dispatch(result.view);
    case ScanStatus::kMalformed:
      return reply_local(
          GrpcCode::kInvalidArgument,
          "infergate: malformed " + method_label(method_) + " request: " + result.error);
    case ScanStatus::kNeedWhole:
      need_whole_ = true;
      if (prefix.length > options.max_reorder_buffer_bytes) {
        return reply_local(GrpcCode::kResourceExhausted,
                           "infergate: " + method_label(method_) +
                               " request is out of canonical field order and too large (" +
                               std::to_string(prefix.length) + " bytes) to buffer for routing");
      }
      return;
    case ScanStatus::kNeedMore:
      // Rescan once the prefix has doubled, not on every frame.
      next_scan_at_ = std::max<size_t>(2 * available, available + 4096);
      if (prefix.compressed && inflater_->consumed() < available) {
        next_scan_at_ = 0;  // inflating stopped early: there is more to inflate now
        return scan_first_message();
      }
      return;
  }
}

void ProxyStream::dispatch(const RequestView& view) {
  (void)view;  // issue 3: round-robin; routing by model and sequence comes with routing/
  routed_ = true;
  backend_ = worker_.next_backend();
  UpstreamConnection* up = worker_.pool(backend_).acquire();
  if (!up->submit(this)) on_upstream_lost("the backend connection refused a new stream");
}

}  // namespace infergate::gateway
