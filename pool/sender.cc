// Copyright 2026 The mp Authors.

#include "pool/sender.h"

#include "base/deadline.h"

namespace mp {
namespace pool_internal {

Sender::Sender(std::shared_ptr<Buffers> buffers) : buffers_(std::move(buffers)) {
  thread_ = std::thread([this] { Run(); });
}

Sender::~Sender() { Stop(); }

void Sender::Send(const std::shared_ptr<Outbox>& to, std::string message, bool all_read) {
  {
    MutexLock lock(&mu_);
    if (to->queued_ > 0 || !to->transport().CanSendWithoutBlocking(message.size(), all_read)) {
      ++to->queued_;
      sends_.emplace_back(to, std::move(message));
      cv_.notify_one();
      return;
    }
  }
  // Nothing for this worker is queued or being sent, and only this thread queues: send here.
  to->transport().Send(message).IgnoreError();
  buffers_->Give(std::move(message));
}

bool Sender::Queued(const Outbox& to) {
  MutexLock lock(&mu_);
  return to.queued_ > 0;
}

void Sender::Run() {
  for (;;) {
    std::pair<std::shared_ptr<Outbox>, std::string> next;
    {
      MutexLock lock(&mu_);
      mu_.Await(cv_, Deadline::Never(),
                [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !sends_.empty() || stop_; });
      if (sends_.empty()) return;
      next = std::move(sends_.front());
      sends_.pop_front();
    }
    next.first->transport().Send(next.second).IgnoreError();
    buffers_->Give(std::move(next.second));
    MutexLock lock(&mu_);
    --next.first->queued_;  // only now may Send send to this worker directly again
  }
}

void Sender::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    sends_.clear();
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

}  // namespace pool_internal
}  // namespace mp
