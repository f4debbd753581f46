#include "benchmarks/sim/stream_call.h"

namespace infergate::sim {

StreamCall::StreamCall(SimRuntime& rt) : Abortable(1), rt_(rt) {
  if (rt_.options.hang_all) {
    // Accepted and never answered: wait for the client to cancel, or for shutdown.
    registered_ = rt_.hangs.add(this);
    if (!registered_) abort();
    return;
  }
  reading_ = true;
  request_ = std::make_unique<inference::ModelInferRequest>();
  StartRead(request_.get());
}

std::unique_ptr<StreamCall::Entry> StreamCall::admit(inference::ModelInferRequest& request) {
  auto entry = std::make_unique<Entry>();
  inference::ModelInferResponse* response = entry->response.mutable_infer_response();
  entry->admission = rt_.pipeline.admit(request, &request, response);
  const Admission& a = entry->admission;
  if (!a.status.ok()) {
    response->Clear();
    response->set_model_name(request.model_name());
    response->set_id(request.id());
    entry->response.set_error_message(a.status.error_message());
  }
  for (const std::string& raw : response->raw_output_contents()) entry->bytes += raw.size();
  entry->ready = a.kind == Admission::Kind::kAnswer;
  return entry;
}

void StreamCall::OnReadDone(bool ok) {
  if (!ok) {
    std::unique_lock<std::mutex> lock(mu_);
    reading_ = false;
    reads_done_ = true;
    Actions actions = next_locked();
    lock.unlock();
    act(actions);
    return;
  }
  rt_.inflight.enter();
  std::unique_ptr<Entry> entry = admit(*request_);
  request_.reset();
  Entry* e = entry.get();
  const Admission::Kind kind = e->admission.kind;
  bool register_hang = false;
  std::unique_lock<std::mutex> lock(mu_);
  reading_ = false;
  queued_bytes_ += e->bytes;
  queue_.push_back(std::move(entry));
  if (kind == Admission::Kind::kDelay) ref();  // the timer's reference
  if (kind == Admission::Kind::kHang && !registered_) register_hang = registered_ = true;
  Actions actions = next_locked();
  lock.unlock();
  if (kind == Admission::Kind::kDelay) {
    rt_.timers.schedule(e->admission.slot.finish, [this, e] { on_due(e); });
  }
  if (register_hang && !rt_.hangs.add(this)) abort();
  act(actions);
}

void StreamCall::on_due(Entry* entry) {
  rt_.pipeline.complete(entry->admission);
  std::unique_lock<std::mutex> lock(mu_);
  entry->ready = true;
  Actions actions = next_locked();
  lock.unlock();
  act(actions);
  unref();
}

void StreamCall::OnWriteDone(bool ok) {
  std::unique_lock<std::mutex> lock(mu_);
  writing_ = false;
  if (!ok) {
    if (!ended_) {
      ended_ = true;
      end_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
    }
  } else {
    queued_bytes_ -= queue_.front()->bytes;
    queue_.pop_front();
  }
  Actions actions = next_locked();
  lock.unlock();
  act(actions);
}

void StreamCall::OnCancel() { end(grpc::Status::CANCELLED); }

void StreamCall::abort() {
  end(grpc::Status(grpc::StatusCode::UNAVAILABLE, rt_.pipeline.message("shutting down")));
}

void StreamCall::end(grpc::Status status) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!ended_) {
    ended_ = true;
    end_status_ = std::move(status);
  }
  Actions actions = next_locked();
  lock.unlock();
  act(actions);
}

void StreamCall::OnDone() {
  std::unique_lock<std::mutex> lock(mu_);
  std::size_t left = 0;
  for (const auto& e : queue_) {
    left += e->inside;
    if (e->admission.kind == Admission::Kind::kHang && e->admission.version != nullptr) {
      e->admission.version->record_failure(FailReason::kCanceled,
                                           std::chrono::steady_clock::now() - e->admission.arrival);
    }
  }
  lock.unlock();
  for (std::size_t i = 0; i < left; ++i) rt_.inflight.leave();
  if (registered_) rt_.hangs.remove(this);
  unref();
}

StreamCall::Actions StreamCall::next_locked() {
  Actions a;
  if (finished_) return a;
  if (ended_) {
    if (!writing_) {
      finished_ = true;
      a.finish = end_status_;
    }
    return a;
  }
  if (!writing_ && !queue_.empty() && queue_.front()->ready) {
    writing_ = true;
    queue_.front()->inside = false;
    a.write = &queue_.front()->response;
  }
  if (!reading_ && !reads_done_ && queue_.size() < kMaxQueued && queued_bytes_ < kMaxQueuedBytes) {
    reading_ = true;
    a.read = true;
  }
  if (reads_done_ && queue_.empty() && !writing_) {
    finished_ = true;
    a.finish = grpc::Status::OK;
  }
  return a;
}

void StreamCall::act(const Actions& actions) {
  if (actions.write != nullptr) {
    rt_.inflight.leave();
    StartWrite(actions.write);
  }
  if (actions.read) {
    request_ = std::make_unique<inference::ModelInferRequest>();
    StartRead(request_.get());
  }
  if (actions.finish) Finish(*actions.finish);
}

}  // namespace infergate::sim
