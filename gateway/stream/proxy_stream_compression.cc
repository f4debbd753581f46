// ProxyStream: compressing a ModelInfer request for a backend that wants it
// (backends[].compression), and the response for a client that accepts it
// (frontend.response_compression). Either way the whole message is held (it has to be:
// the gRPC prefix carries the compressed length) and compressed on the compression
// pool, never on the event loop.
#include <boost/asio/post.hpp>

#include <string>

#include "gateway/stream/proxy_stream.h"
#include "gateway/worker.h"

namespace infergate::gateway {
namespace {

// The first message's prefix, if the queue holds one.
std::optional<GrpcPrefix> first_prefix(const ByteQueue& queue) {
  if (queue.size() < kGrpcPrefixBytes) return std::nullopt;
  std::uint8_t raw[kGrpcPrefixBytes];
  queue.copy_out(0, raw);
  GrpcPrefix prefix;
  if (!decode_grpc_prefix(raw, prefix)) return std::nullopt;
  return prefix;
}

// The message body (after the prefix) as one buffer for zlib.
std::string body_copy(const ByteQueue& queue, size_t length) {
  std::string body(length, '\0');
  queue.copy_out(kGrpcPrefixBytes, {reinterpret_cast<std::uint8_t*>(body.data()), body.size()});
  return body;
}

// True if a grpc-accept-encoding value lists `name`.
bool accepts(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view token = header.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token == name) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

// The copies a compression makes (its input and its output), charged to the buffer
// budget for as long as either lambda holds them. Any thread.
class BudgetHold {
 public:
  BudgetHold(BufferBudget* budget, std::uint64_t bytes) : budget_(budget), bytes_(bytes) {
    if (budget_ != nullptr) budget_->charge(bytes_);
  }
  ~BudgetHold() {
    if (budget_ != nullptr) budget_->refund(bytes_);
  }
  BudgetHold(const BudgetHold&) = delete;
  BudgetHold& operator=(const BudgetHold&) = delete;

 private:
  BufferBudget* budget_;
  std::uint64_t bytes_;
};

}  // namespace

template <typename Work, typename Done>
bool ProxyStream::off_loop(std::uint64_t held_bytes, Work work, Done done) {
  BufferBudget* budget = worker_.blocks().budget();
  if (budget != nullptr && budget->would_exceed(held_bytes)) return false;
  auto hold = std::make_shared<BudgetHold>(budget, held_bytes);
  boost::asio::post(*worker_.shared().compression, [hold, this, alive = link(),
                                                    work = std::move(work),
                                                    done = std::move(done)]() mutable {
    auto result = work();
    alive.post_if_alive([hold, this, result = std::move(result), done = std::move(done)]() mutable {
      done(std::move(result));
      worker_.flush_dirty();
    });
  });
  return true;
}

// ------------------------------------------------------------------ requests

void ProxyStream::submit_upstream() {
  const routing::BackendInfo* b = backend();
  if (b == nullptr) return;
  const BackendTarget& target = worker_.target(b->id);
  // Once per request: a retry sends what the first attempt sent (compressed or not).
  if (request_squeeze_ == RequestSqueeze::kUndecided) {
    request_squeeze_ = RequestSqueeze::kDecided;
    const std::optional<GrpcPrefix> prefix = first_prefix(request_);
    if (request_encoding_ == Encoding::kIdentity && target.compression != Encoding::kIdentity &&
        method_ == Method::kModelInfer && worker_.shared().compression && prefix &&
        !prefix->compressed && prefix->length >= target.compression_min_bytes &&
        prefix->length <= kMaxCompressBytes) {
      compress_with_ = target.compression;
      request_squeeze_ = RequestSqueeze::kHolding;
      return maybe_compress_request();
    }
  }
  if (worker_.connector().open(b->id, *this)) return;
  on_upstream_lost("the backend connection refused a new stream");
}

void ProxyStream::maybe_compress_request() {
  if (request_squeeze_ != RequestSqueeze::kHolding || down_ == nullptr) return;
  const std::optional<GrpcPrefix> prefix = first_prefix(request_);
  const size_t whole = kGrpcPrefixBytes + (prefix ? prefix->length : 0);
  const bool one_whole_message = prefix && request_.size() == whole;
  if (!request_ended_ && request_.size() <= whole) return;  // the rest is on its way
  if (!one_whole_message) {
    // Not the one message a ModelInfer has: forward it as it is; the backend judges it.
    request_squeeze_ = RequestSqueeze::kDecided;
    return submit_upstream();
  }
  request_squeeze_ = RequestSqueeze::kRunning;
  const bool started = off_loop(
      2 * std::uint64_t{prefix->length},
      [body = body_copy(request_, prefix->length), encoding = compress_with_] {
        const auto t0 = std::chrono::steady_clock::now();
        CompressedMessage m = compress_message(
            encoding, {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
        return std::make_pair(std::move(m), std::chrono::steady_clock::now() - t0);
      },
      [this](std::pair<CompressedMessage, std::chrono::nanoseconds> r) {
        on_request_compressed(std::move(r.first), r.second);
      });
  if (!started) {
    // No room in limits.max_buffered_bytes for the copies: it goes as it is.
    request_squeeze_ = RequestSqueeze::kDecided;
    submit_upstream();
  }
}

void ProxyStream::on_request_compressed(CompressedMessage message, std::chrono::nanoseconds took) {
  request_squeeze_ = RequestSqueeze::kDecided;
  if (down_ == nullptr || phase_ == Phase::kAnswered || !at_.runtime) return;
  const size_t original = request_.size();
  at_.runtime->compression_ns.fetch_add(static_cast<std::uint64_t>(took.count()),
                                        std::memory_order_relaxed);
  // Sent compressed only if that is smaller (dense data does not compress).
  if (message.ok && message.framed.size() < original) {
    at_.runtime->compressed_requests.fetch_add(1, std::memory_order_relaxed);
    at_.runtime->compression_in_bytes.fetch_add(original, std::memory_order_relaxed);
    at_.runtime->compression_out_bytes.fetch_add(message.framed.size(), std::memory_order_relaxed);
    request_.clear();
    request_.append(
        {reinterpret_cast<const std::uint8_t*>(message.framed.data()), message.framed.size()});
    request_encoding_ = compress_with_;
  }
  submit_upstream();
}

// ----------------------------------------------------------------- responses

void ProxyStream::plan_response_compression(std::vector<nghttp2_nv>& headers) {
  const Encoding encoding = worker_.options().response_compression;
  if (encoding == Encoding::kIdentity || method_ != Method::kModelInfer ||
      !worker_.shared().compression) {
    return;
  }
  if (!accepts(request_headers_.find("grpc-accept-encoding"), encoding_name(encoding))) return;
  const Encoding backend = parse_encoding(at_.response_headers.find("grpc-encoding"));
  if (backend != Encoding::kIdentity) return;  // already compressed by the backend
  response_encoding_ = encoding;
  response_squeeze_ = ResponseSqueeze::kHolding;
  set_nv(headers, "grpc-encoding", encoding_name(encoding));
}

void ProxyStream::maybe_compress_response() {
  if (response_squeeze_ != ResponseSqueeze::kHolding) return;
  const std::optional<GrpcPrefix> prefix = first_prefix(response_);
  if (response_.size() < kGrpcPrefixBytes) return;
  const std::uint64_t min = worker_.options().response_compression_min_bytes;
  if (!prefix || prefix->compressed || prefix->length < min || prefix->length > kMaxCompressBytes) {
    // Sent as it is (compressed flag 0 is valid under any grpc-encoding).
    response_squeeze_ = ResponseSqueeze::kNone;
    return;
  }
  if (response_.size() < kGrpcPrefixBytes + prefix->length) return;
  const size_t original = response_.size();
  const bool started = off_loop(
      2 * std::uint64_t{prefix->length},
      [body = body_copy(response_, prefix->length), encoding = response_encoding_] {
        return compress_message(encoding,
                                {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
      },
      [this, original](CompressedMessage m) { on_response_compressed(std::move(m), original); });
  // No room for the copies: sent as it is.
  response_squeeze_ = started ? ResponseSqueeze::kRunning : ResponseSqueeze::kNone;
}

void ProxyStream::on_response_compressed(CompressedMessage message, size_t original) {
  const bool ended = response_squeeze_ == ResponseSqueeze::kRunningEnded;
  response_squeeze_ = ResponseSqueeze::kNone;
  if (down_ == nullptr) return;
  // Only the first message is replaced; anything after it stays behind it.
  if (message.ok && message.framed.size() < original && response_.size() == original) {
    response_.clear();
    response_.append(
        {reinterpret_cast<const std::uint8_t*>(message.framed.data()), message.framed.size()});
  }
  if (ended) enter(Phase::kAnswered);  // the backend's trailers came while it was compressed
  down_->resume_body(down_id_);
  down_->flush_later();
}

}  // namespace infergate::gateway
