// Copyright 2026 The mp Authors.

#include "pool/worker_loop.h"

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "channels/connection.h"
#include "pool/task.h"
#include "pool/wire.h"
#include "serialize/frame.h"
#include "serialize/status.h"
#include "start_methods/process.h"

namespace mp {
namespace pool_internal {
namespace {

// Sends `out`: OK also when the pool is gone (the loop then ends at its next receive).
absl::Status SendResults(WorkerTransport& transport, const std::string& out) {
  absl::Status s = transport.Send(out);
  return s.code() == absl::StatusCode::kAborted ? absl::OkStatus() : s;
}

// Runs the chunks a worker receives and sends their results; one per worker process.
class ChunkRunner {
 public:
  ChunkRunner(WorkerTransport& transport, SlotRecorder& slot)
      : transport_(transport), slot_(slot) {}

  // Runs chunk `m`, the worker's `number`th, unless the pool took it back first, and sends its
  // results.
  absl::Status Run(const ToWorker& m, uint64_t number);

 private:
  WorkerTransport& transport_;
  SlotRecorder& slot_;
  std::string out_, scratch_;  // reused for every chunk
  std::string last_name_;
  TaskFn fn_ = nullptr;
  BatchFn batch_ = nullptr;
};

absl::Status ChunkRunner::Run(const ToWorker& m, uint64_t number) {
  absl::StatusOr<bool> claimed = slot_.Claim(number);
  if (!claimed.ok()) return claimed.status();
  if (!*claimed) return absl::OkStatus();  // the pool gave it to another worker
  const ChunkHeader& h = m.header;
  if (fn_ == nullptr || m.function != last_name_) {
    last_name_ = std::string(m.function);
    fn_ = FindTask(last_name_);
    batch_ = FindBatch(last_name_);
  }
  const bool timed = (m.flags & kTimedChunk) != 0;
  uint32_t start = 0;  // the first task the per-task loop below runs
  std::atomic<uint64_t>* batch_index = nullptr;
  if (m.kind == kFixedChunk && batch_ != nullptr && !timed &&
      (batch_index = slot_.BatchIndex(h.job)) != nullptr) {
    // Arithmetic in, arithmetic out: the results go straight into the compact form.
    StartFixedResults(h, out_);
    const size_t before = out_.size();
    uint32_t ran = 0;
    absl::Status thrown;
    const bool batched =
        batch_(m.fixed_items, h.count, m.item_size, h.first, batch_index, out_, &ran, &thrown);
    slot_.TaskEnds(false);
    if (batched && thrown.ok()) {
      FinishFixedResults(h.count == 0 ? 0 : static_cast<uint32_t>((out_.size() - before) / h.count),
                         out_);
      return SendResults(transport_, out_);
    }
    if (batched) {
      // Task `ran` threw: the raw results before it become encoded ones (the raw bytes are their
      // Codec payloads), then the failure, then the per-task loop runs the rest.
      scratch_.assign(out_, before);
      const size_t result_size = ran == 0 ? 0 : scratch_.size() / ran;
      StartResults(h, out_);
      AppendRawResults(scratch_, result_size, ran, out_);
      AppendError(out_, thrown);
      start = ran + 1;
    } else {
      StartResults(h, out_);
    }
  } else {
    StartResults(h, out_);
  }
  // One task after another, each result encoded (AppendOk / AppendError).
  for (uint32_t i = start; i < h.count; ++i) {
    const absl::Span<const uint8_t> args =
        m.kind == kFixedChunk
            ? absl::Span<const uint8_t>(m.fixed_items + size_t{i} * m.item_size, m.item_size)
            : m.items[i];
    slot_.TaskStarts(h.job, h.first + i, timed ? number : 0);
    if (fn_ == nullptr) {
      AppendError(out_, absl::NotFoundError(absl::StrCat(
                            "Pool worker: no registered task function \"", last_name_, "\"")));
    } else {
      fn_(args, out_);  // catches what the task throws
    }
    slot_.TaskEnds(timed);
  }
  if (start == 0) CompactResults(h.count, scratch_, out_);
  return SendResults(transport_, out_);
}

}  // namespace

void LocalSlot::TaskStarts(uint64_t job, uint64_t index, uint64_t timed_chunk) {
  slot_->job.store(job, std::memory_order_relaxed);
  slot_->index.store(index, std::memory_order_relaxed);
  slot_->running.store(1, std::memory_order_release);
  if (timed_chunk != 0) RecordTimedTask(slot_, timed_chunk, index, MonotonicNowNs());
}

void LocalSlot::TaskEnds(bool timed) {
  if (timed) RecordTimedTask(slot_, 0, 0, 0);
  slot_->running.store(0, std::memory_order_release);
}

std::atomic<uint64_t>* LocalSlot::BatchIndex(uint64_t job) {
  slot_->job.store(job, std::memory_order_relaxed);
  slot_->running.store(1, std::memory_order_release);
  return &slot_->index;
}

absl::Status RunWorkerLoop(WorkerTransport& transport, SlotRecorder& slot, int parent_sentinel,
                           WorkerInitializer init) {
  if (!init.function.empty()) {
    absl::Status status;
    try {
      status = RunInitializer(init);
    } catch (...) {
      status = CurrentExceptionStatus(init.function);
    }
    if (!status.ok()) {
      transport.Send(EncodeInitFailed(status)).IgnoreError();
      return status;
    }
  }
  ChunkRunner runner(transport, slot);
  std::string in;  // reused for every message
  ToWorker m;
  std::vector<absl::Span<const uint8_t>> parts;
  uint64_t received = 0;  // chunks received: the number of the next one, less one
  for (;;) {
    absl::StatusOr<bool> soon = transport.ReadableSoon();
    if (!soon.ok()) return soon.status();
    if (!*soon && parent_sentinel >= 0) {
      std::vector<Waitable> objects = {transport.ReadWaitable(), Waitable(parent_sentinel)};
      absl::StatusOr<std::vector<size_t>> ready = Wait(objects);
      if (!ready.ok()) return ready.status();
      if (ready->size() == 1 && (*ready)[0] == 1) return absl::OkStatus();  // the pool died
    }
    size_t in_length = 0;
    if (absl::Status s = transport.Receive(in, &in_length); !s.ok()) {
      return s.code() == absl::StatusCode::kOutOfRange ? absl::OkStatus() : s;
    }
    const absl::Span<const uint8_t> message = AsBytes(absl::string_view(in.data(), in_length));
    if (!message.empty() && message[0] == kChunks) {
      if (absl::Status s = SplitChunks(message, &parts); !s.ok()) return s;
    } else {
      parts.assign(1, message);
    }
    for (absl::Span<const uint8_t> part : parts) {
      if (absl::Status s = DecodeToWorker(part, &m); !s.ok()) return s;
      if (m.kind == kStop) return absl::OkStatus();
      if (absl::Status s = runner.Run(m, ++received); !s.ok()) return s;
    }
  }
}

absl::Status PoolWorkerMain(Connection conn, ShmHandle slots, int64_t slot_index,
                            WorkerInitializer init) {
  try {
    absl::StatusOr<std::unique_ptr<ConnectionWorkerTransport>> transport =
        ConnectionWorkerTransport::Create(std::move(conn), false);
    if (!transport.ok()) return transport.status();
    LocalSlot slot(static_cast<Slot*>(slots.segment.At(slots.offset)) + slot_index);
    const ParentHandle* parent = ParentProcess();
    return RunWorkerLoop(**transport, slot, parent != nullptr ? parent->Sentinel() : -1,
                         std::move(init));
  } catch (...) {
    try {
      return CurrentExceptionStatus("the pool's worker loop");
    } catch (...) {
      std::abort();  // formatting the status threw (out of memory): die here rather than unwind
    }
  }
}

}  // namespace pool_internal
}  // namespace mp
