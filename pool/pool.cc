// Copyright 2026 The mp Authors.

#include "pool/pool.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <thread>
#include <typeinfo>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/exception.h"
#include "channels/connection.h"
#include "serialize/status.h"
#include "sync/shm.h"

namespace mp {
namespace pool_internal {
namespace {

// ---- Task registry ----

struct Registry {
  Mutex mu;
  absl::flat_hash_map<std::string, std::pair<TaskFn, BatchFn>> by_name ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<const void*, const std::string*> by_key ABSL_GUARDED_BY(mu);
};
Registry& GetRegistry() {
  static Registry* r = new Registry;
  return *r;
}

// ---- Wire format between the pool and a worker (over the worker's socketpair) ----
//
// Pool -> worker, a chunk:  u8 1 | u64 job | u64 first | u32 count | varint len + function name |
//                           count x (varint len + encoded arguments)
// Pool -> worker, stop:     u8 2
// Worker -> pool, results:  u8 1 | u64 job | u64 first | u32 count | count x result (AppendOk,
//                           AppendError)
// Worker -> pool, initializer failed: u8 3 | Codec<absl::Status>
//
// A worker numbers the chunks it receives 1, 2, 3... and claims each in its Slot before running it
// (see Slot::claimed); a chunk the pool took back first is skipped without a reply.
constexpr uint8_t kChunk = 1;
constexpr uint8_t kStop = 2;
constexpr uint8_t kInitFailed = 3;
// Pool -> worker, a chunk of fixed-size items: u8 4 | u64 job | u64 first | u32 count |
//                           varint len + function name | u32 item size | count x item
constexpr uint8_t kFixedChunk = 4;
// Worker -> pool, results that all succeeded with the same payload size (< 128 bytes):
//                           u8 5 | u64 job | u64 first | u32 count | u32 size | count x payload
constexpr uint8_t kFixedResults = 5;

// Where a worker records the task it is running, read by the pool after the worker died.
struct alignas(kShmAlignment) Slot {
  std::atomic<uint64_t> job;
  std::atomic<uint64_t> index;
  std::atomic<uint32_t> running;
  // The number of the last chunk the worker started or the pool took back (chunks are numbered in
  // the order the pool sent them to this worker). The worker starts chunk n only by raising it from
  // n - 1 to n; the pool takes back every chunk above a value v by raising it from v to the number
  // of the last chunk it sent. Both are compare-and-swaps on this word, so a chunk either runs on
  // this worker or goes back to the pool's queue, never both.
  std::atomic<uint64_t> claimed;
};

// The worker's side of Slot::claimed: true if it may run chunk `number`, false if the pool took
// it back.
bool ClaimChunk(Slot* slot, uint64_t number) {
  uint64_t c = slot->claimed.load(std::memory_order_acquire);
  while (c < number) {
    if (slot->claimed.compare_exchange_weak(c, number, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void PutU64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void PutVarint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}
void PutStatus(std::string& s, const absl::Status& status) {
  const size_t at = s.size();
  s.resize(at + Codec<absl::Status>::Size(status));
  ByteWriter w(reinterpret_cast<uint8_t*>(s.data()) + at, s.size() - at);
  Codec<absl::Status>::Encode(status, w);
}
// A failure from the other side of the socket: never OK (AsFailure).
absl::Status ReadFailure(ByteReader& r, absl::Status* failure) {
  absl::Status decoded;
  if (absl::Status s = Codec<absl::Status>::Decode(r, decoded); !s.ok()) return s;
  *failure = AsFailure(std::move(decoded));
  return absl::OkStatus();
}

struct ChunkHeader {
  uint8_t kind = 0;
  uint64_t job = 0;
  uint64_t first = 0;
  uint32_t count = 0;
};

absl::Status ReadHeader(ByteReader& r, ChunkHeader* h) {
  absl::StatusOr<uint8_t> kind = r.ReadByte("message kind");
  if (!kind.ok()) return kind.status();
  h->kind = *kind;
  if (h->kind != kChunk && h->kind != kFixedChunk && h->kind != kFixedResults) {
    return absl::OkStatus();
  }
  if (absl::Status s = r.ReadLE(&h->job, "job id"); !s.ok()) return s;
  if (absl::Status s = r.ReadLE(&h->first, "first index"); !s.ok()) return s;
  return r.ReadLE(&h->count, "count");
}

absl::StatusOr<absl::Span<const uint8_t>> ReadBlob(ByteReader& r, absl::string_view what) {
  absl::StatusOr<uint64_t> n = r.ReadVarint(what);
  if (!n.ok()) return n.status();
  return r.ReadSpan(*n, what);
}

std::string DescribeExit(int pid, std::optional<int> code) {
  if (!code.has_value()) return absl::StrCat("worker pid ", pid, " ended");
  if (*code < 0) return absl::StrCat("worker pid ", pid, " died (signal ", -*code, ")");
  return absl::StrCat("worker pid ", pid, " exited (code ", *code, ")");
}

}  // namespace

const std::string* RegisterTask(std::string name, const void* key, TaskFn fn, BatchFn batch) {
  Registry& r = GetRegistry();
  MutexLock lock(&r.mu);
  if (auto it = r.by_key.find(key); it != r.by_key.end()) return it->second;
  std::string unique = name;
  for (int n = 2; r.by_name.contains(unique); ++n) unique = absl::StrCat(name, "#", n);
  auto [it, inserted] = r.by_name.emplace(unique, std::make_pair(fn, batch));
  const std::string* stored = new std::string(it->first);
  r.by_key.emplace(key, stored);
  return stored;
}

TaskFn FindTask(absl::string_view name) {
  Registry& r = GetRegistry();
  MutexLock lock(&r.mu);
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : it->second.first;
}

BatchFn FindBatch(absl::string_view name) {
  Registry& r = GetRegistry();
  MutexLock lock(&r.mu);
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : it->second.second;
}

void AppendError(std::string& out, const absl::Status& status) {
  out.push_back(1);
  PutStatus(out, AsFailure(status));
}

absl::Status CurrentExceptionStatus(absl::string_view function) {
  return absl::UnknownError(
      absl::StrCat("Pool: ", function, " threw ", CurrentExceptionDescription()));
}

// ---- Job ----

uint32_t Job::AddBlobLocked(const std::shared_ptr<const std::string>& blob) {
  blobs_.push_back(blob);
  return static_cast<uint32_t>(blobs_.size() - 1);
}

void Job::AddLocked(size_t first, Segment seg) {
  const size_t count = seg.count;
  if (count == 0) return;
  std::memset(done_.data() + first, 1, count);
  done_count_ += count;
  if (!seg.status.ok()) ++failed_;
  segments_.emplace(first, std::move(seg));
  completed_.emplace_back(first, count);
  completed_end_.push_back(done_count_);
}

template <typename F>
void Job::ForEachUndoneRunLocked(size_t first, size_t count, F f) {
  const size_t end = first + count;
  size_t i = first;
  while (i < end) {
    const void* undone = std::memchr(done_.data() + i, 0, end - i);
    if (undone == nullptr) return;
    i = static_cast<const uint8_t*>(undone) - done_.data();
    const void* next_done = std::memchr(done_.data() + i, 1, end - i);
    const size_t j =
        next_done == nullptr ? end : static_cast<const uint8_t*>(next_done) - done_.data();
    f(i, j);  // may mark [i, j) done
    i = j;
  }
}

void Job::FailRunsLocked(size_t first, size_t count, const absl::Status& status) {
  ForEachUndoneRunLocked(first, count, [&](size_t i, size_t j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Segment seg;
    seg.count = j - i;
    seg.status = status;
    AddLocked(i, std::move(seg));
  });
}

const Job::Segment& Job::SegmentOfLocked(size_t index, size_t* first) const {
  auto it = segments_.upper_bound(index);
  --it;  // done items always lie in a segment starting at or before them
  *first = it->first;
  return it->second;
}

void Job::Finish(size_t index, std::shared_ptr<const std::string> blob, size_t offset,
                 size_t length, absl::Status status) {
  bool wake;
  {
    MutexLock lock(&mu_);
    if (done_[index]) return;
    Segment seg;
    seg.count = 1;
    if (!status.ok() || blob == nullptr) {
      seg.status = status.ok() ? absl::InternalError(what_ + ": a result without its message")
                               : std::move(status);
    } else {
      seg.blob = AddBlobLocked(blob);
      seg.spans.emplace_back(static_cast<uint32_t>(offset), static_cast<uint32_t>(length));
    }
    AddLocked(index, std::move(seg));
    wake = WakeNeededLocked();
  }
  if (wake) cv_.notify_all();
}

void Job::FinishFixed(size_t first, size_t count, const std::shared_ptr<const std::string>& blob,
                      size_t offset, size_t stride) {
  bool wake;
  {
    MutexLock lock(&mu_);
    const uint32_t b = AddBlobLocked(blob);
    // Items a failure already settled (a worker death) keep that outcome: add the undone runs.
    ForEachUndoneRunLocked(first, count,
                           [&](size_t i, size_t j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                             Segment seg;
                             seg.count = j - i;
                             seg.blob = b;
                             seg.fixed = true;
                             seg.offset = static_cast<uint32_t>(offset + (i - first) * stride);
                             seg.stride = static_cast<uint32_t>(stride);
                             AddLocked(i, std::move(seg));
                           });
    wake = WakeNeededLocked();
  }
  if (wake) cv_.notify_all();
}

void Job::FinishRange(size_t first, const std::shared_ptr<const std::string>& blob,
                      std::vector<Finished>& results) {
  bool wake;
  {
    MutexLock lock(&mu_);
    const uint32_t b = AddBlobLocked(blob);
    // Within each run of undone items: a failed task is a segment of its own, and each stretch of
    // successful ones is one segment of spans.
    ForEachUndoneRunLocked(first, results.size(),
                           [&](size_t run_begin, size_t run_end)
                               ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                 size_t i = run_begin - first;
                                 const size_t end = run_end - first;
                                 while (i < end) {
                                   Segment seg;
                                   if (!results[i].status.ok()) {
                                     seg.count = 1;
                                     seg.status = std::move(results[i].status);
                                     AddLocked(first + i, std::move(seg));
                                     ++i;
                                     continue;
                                   }
                                   size_t j = i;
                                   seg.blob = b;
                                   for (; j < end && results[j].status.ok(); ++j) {
                                     seg.spans.emplace_back(results[j].offset, results[j].length);
                                   }
                                   seg.count = j - i;
                                   AddLocked(first + i, std::move(seg));
                                   i = j;
                                 }
                               });
    wake = WakeNeededLocked();
  }
  if (wake) cv_.notify_all();
}

void Job::FailUnfinished(const absl::Status& status) {
  bool wake;
  {
    MutexLock lock(&mu_);
    if (done_count_ == done_.size()) return;
    FailRunsLocked(0, done_.size(), status);
    wake = WakeNeededLocked();
  }
  if (wake) cv_.notify_all();
}

bool Job::Ready() const {
  MutexLock lock(&mu_);
  return done_count_ == done_.size();
}

absl::Status CheckBatch(const FdTable& table, const Batch& batch) {
  if (!table.fds().empty() || !table.fork_only().empty()) {
    return absl::InvalidArgumentError(
        "Pool: task arguments hold descriptors or shared objects (a Lock, Queue, Connection...), "
        "which tasks cannot carry; share them with the workers another way (a SharedMemory name, "
        "a Listener address)");
  }
  if (batch.bytes.size() > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("Pool: task arguments of ", batch.bytes.size(),
                                                   " bytes in one call (max 4 GiB)"));
  }
  return absl::OkStatus();
}

bool Job::WaitAll(Deadline deadline) const {
  MutexLock lock(&mu_);
  return mu_.Await(cv_, deadline, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_count_ == done_.size();
  });
}

bool Job::WaitItem(size_t index, Deadline deadline) const {
  MutexLock lock(&mu_);
  ++item_waiters_;
  const bool done = mu_.Await(cv_, deadline, [this, index]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_[index] != 0;
  });
  --item_waiters_;
  return done;
}

absl::Status Job::ItemResult(size_t index, absl::Span<const uint8_t>* payload,
                             std::shared_ptr<const std::string>* keep) const {
  MutexLock lock(&mu_);
  if (!done_[index]) return absl::InternalError(absl::StrCat(what_, ": task ", index, " not done"));
  size_t first = 0;
  const Segment& seg = SegmentOfLocked(index, &first);
  if (!seg.status.ok()) return seg.status;
  *keep = blobs_[seg.blob];
  *payload = RunOfLocked(first, seg).Payload(index - first);
  return absl::OkStatus();
}

std::optional<size_t> Job::WaitCompleted(size_t position, Deadline deadline) const {
  MutexLock lock(&mu_);
  ++item_waiters_;
  const bool done = mu_.Await(cv_, deadline, [this, position]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_count_ > position;
  });
  --item_waiters_;
  if (!done) return std::nullopt;
  // The run holding the position-th completion: the first whose running total exceeds it.
  const size_t k =
      static_cast<size_t>(std::upper_bound(completed_end_.begin(), completed_end_.end(), position) -
                          completed_end_.begin());
  const size_t before = k == 0 ? 0 : completed_end_[k - 1];
  return completed_[k].first + (position - before);
}

absl::Status Job::FirstFailure() const {
  MutexLock lock(&mu_);
  return FirstFailureLocked();
}

// ---- Message buffers ----

namespace {

// Receives one message into `buffer`, reusing its memory: the message is buffer[0, *length). A
// message longer than the buffer replaces it (RecvBytesInto hands it over whole).
absl::Status RecvReused(Connection& conn, std::string& buffer, size_t* length) {
  std::string whole;
  absl::StatusOr<size_t> n = conn.RecvBytesInto(
      absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(buffer.data()), buffer.size()), 0, &whole);
  if (n.ok()) {
    *length = *n;
    return absl::OkStatus();
  }
  if (n.status().code() != absl::StatusCode::kResourceExhausted) return n.status();
  buffer = std::move(whole);
  *length = buffer.size();
  return absl::OkStatus();
}

}  // namespace

// Message buffers the pool's threads reuse, so that a steady stream of Maps writes the same memory
// instead of fresh pages: glibc returns the freed top of a thread's arena to the kernel, so every
// new 100 KB message page-faulted anew (measured: ~60 faults and ~0.5 ms of a 1 ms Map of 100,000
// trivial tasks on a VM, where a fault costs microseconds). Thread-safe.
class Buffers : public std::enable_shared_from_this<Buffers> {
 public:
  // A kept buffer whose size() is its whole capacity: the smallest of at least `size` bytes, else
  // the largest (empty when none is kept).
  std::string Take(size_t size = 0) {
    MutexLock lock(&mu_);
    if (free_.empty()) return std::string();
    size_t pick = 0;
    for (size_t i = 1; i < free_.size(); ++i) {
      const size_t have = free_[i].capacity(), best = free_[pick].capacity();
      if (best < size ? have > best : (have >= size && have < best)) pick = i;
    }
    std::string b = std::move(free_[pick]);
    free_[pick] = std::move(free_.back());
    free_.pop_back();
    kept_bytes_ -= b.capacity();
    return b;
  }
  // Keeps `buffer` for a later Take (tiny and huge ones, and any beyond kMaxKeptBytes, are freed).
  void Give(std::string buffer) {
    const size_t capacity = buffer.capacity();
    if (capacity < kMinBytes || capacity > kMaxBytes) return;
    MutexLock lock(&mu_);
    if (kept_bytes_ + capacity > kMaxKeptBytes) return;
    buffer.resize(capacity);
    kept_bytes_ += capacity;
    free_.push_back(std::move(buffer));
  }
  // Give to `pool` if it still exists (a blob or batch may outlive its Pool).
  static void GiveBack(const std::weak_ptr<Buffers>& pool, std::string buffer) {
    if (std::shared_ptr<Buffers> alive = pool.lock()) alive->Give(std::move(buffer));
  }
  // `buffer` as a shared blob that comes back here when its last reference goes.
  std::shared_ptr<const std::string> Share(std::string buffer) {
    return std::shared_ptr<const std::string>(
        new std::string(std::move(buffer)), [self = weak_from_this()](const std::string* b) {
          GiveBack(self, std::move(*const_cast<std::string*>(b)));
          delete b;
        });
  }

 private:
  static constexpr size_t kMinBytes = size_t{4} << 10;
  static constexpr size_t kMaxBytes = size_t{16} << 20;
  static constexpr size_t kMaxKeptBytes = size_t{32} << 20;
  Mutex mu_;
  std::vector<std::string> free_ ABSL_GUARDED_BY(mu_);
  size_t kept_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---- The worker process ----

// Runs the initializer: OK, or its failure (an exception it threw included).
absl::Status RunInitializer(const std::string& function, const std::string& args) {
  TaskFn init = FindTask(function);
  if (init == nullptr) {
    return absl::NotFoundError(absl::StrCat("no registered function \"", function, "\""));
  }
  std::string out;
  init(AsBytes(args), out);  // catches what the initializer throws
  if (out.empty() || out[0] == 0) return absl::OkStatus();
  ByteReader r(AsBytes(out));
  r.ReadByte("tag").IgnoreError();
  absl::Status failure;
  if (absl::Status s = ReadFailure(r, &failure); !s.ok()) return s;
  return failure;
}

// Appends a results header (kind kChunk or kFixedResults) to `out`.
void PutResultsHeader(std::string& out, uint8_t kind, const ChunkHeader& h) {
  out.push_back(static_cast<char>(kind));
  PutU64(out, h.job);
  PutU64(out, h.first);
  PutU32(out, h.count);
}

// The worker loop: the initializer, then chunks until told to stop, the pool closes its end, or
// the pool's process dies.
absl::Status PoolWorkerLoop(PassedFd conn_fd, const ShmHandle& slots, int64_t slot_index,
                            const std::string& init_function, const std::string& init_args) {
  absl::StatusOr<Connection> adopted = Connection::FromFd(conn_fd.fd);
  if (!adopted.ok()) return adopted.status();
  Connection conn = *std::move(adopted);
  Slot* slot = static_cast<Slot*>(slots.segment.At(slots.offset)) + slot_index;
  if (!init_function.empty()) {
    absl::Status status;
    try {
      status = RunInitializer(init_function, init_args);
    } catch (...) {
      status = CurrentExceptionStatus(init_function);
    }
    if (!status.ok()) {
      std::string m(1, static_cast<char>(kInitFailed));
      PutStatus(m, status);
      conn.SendBytes(m).IgnoreError();
      return status;
    }
  }
  const ParentHandle* parent = ParentProcess();
  const int parent_sentinel = parent != nullptr ? parent->Sentinel() : -1;
  std::string out;
  std::string in;  // reused for every message
  std::string last_name;
  TaskFn fn = nullptr;
  BatchFn batch = nullptr;
  uint64_t received = 0;  // chunks received: the number of the next one, less one
  constexpr size_t kHeader = 1 + 8 + 8 + 4;
  for (;;) {
    if (parent_sentinel >= 0) {
      std::vector<Waitable> objects = {Waitable(conn), Waitable(parent_sentinel)};
      absl::StatusOr<std::vector<size_t>> ready = Wait(objects);
      if (!ready.ok()) return ready.status();
      if (ready->size() == 1 && (*ready)[0] == 1) return absl::OkStatus();  // the pool died
    }
    size_t in_length = 0;
    if (absl::Status s = RecvReused(conn, in, &in_length); !s.ok()) {
      return s.code() == absl::StatusCode::kOutOfRange ? absl::OkStatus() : s;
    }
    ByteReader r(AsBytes(absl::string_view(in.data(), in_length)));
    ChunkHeader h;
    if (absl::Status s = ReadHeader(r, &h); !s.ok()) return s;
    if (h.kind == kStop) return absl::OkStatus();
    if (h.kind != kChunk && h.kind != kFixedChunk) {
      return absl::InvalidArgumentError(absl::StrCat("Pool worker: unknown message kind ", h.kind));
    }
    if (!ClaimChunk(slot, ++received)) continue;  // the pool gave it to another worker
    absl::StatusOr<absl::Span<const uint8_t>> name = ReadBlob(r, "function name");
    if (!name.ok()) return name.status();
    const absl::string_view name_view(reinterpret_cast<const char*>(name->data()), name->size());
    if (fn == nullptr || name_view != last_name) {
      last_name = std::string(name_view);
      fn = FindTask(last_name);
      batch = FindBatch(last_name);
    }
    uint32_t item_size = 0;
    const uint8_t* fixed_items = nullptr;
    if (h.kind == kFixedChunk) {
      if (absl::Status s = r.ReadLE(&item_size, "item size"); !s.ok()) return s;
      absl::StatusOr<absl::Span<const uint8_t>> all =
          r.ReadSpan(static_cast<size_t>(item_size) * h.count, "fixed-size items");
      if (!all.ok()) return all.status();
      fixed_items = all->data();
    }
    out.clear();
    uint32_t start = 0;  // the first task the per-task loop below runs
    if (fixed_items != nullptr && batch != nullptr) {
      // Arithmetic in, arithmetic out: the results go straight into the compact form.
      PutResultsHeader(out, kFixedResults, h);
      const size_t size_at = out.size();
      PutU32(out, 0);
      slot->job.store(h.job, std::memory_order_relaxed);
      slot->running.store(1, std::memory_order_release);
      const size_t before = out.size();
      uint32_t ran = 0;
      absl::Status thrown;
      const bool batched =
          batch(fixed_items, h.count, item_size, h.first, &slot->index, out, &ran, &thrown);
      slot->running.store(0, std::memory_order_release);
      if (batched && thrown.ok()) {
        const uint32_t result_size =
            h.count == 0 ? 0 : static_cast<uint32_t>((out.size() - before) / h.count);
        for (int i = 0; i < 4; ++i) out[size_at + i] = static_cast<char>(result_size >> (8 * i));
        if (absl::Status s = conn.SendBytes(out); !s.ok()) {
          return s.code() == absl::StatusCode::kAborted ? absl::OkStatus() : s;
        }
        continue;
      }
      if (batched) {
        // Task `ran` threw: the raw results before it become encoded ones (the raw bytes are their
        // Codec payloads), then the failure, then the per-task loop runs the rest.
        std::string raw = out.substr(before);
        const size_t result_size = ran == 0 ? 0 : raw.size() / ran;
        out.clear();
        PutResultsHeader(out, kChunk, h);
        for (uint32_t i = 0; i < ran; ++i) {
          out.push_back(0);
          PutVarint(out, result_size);
          out.append(raw, i * result_size, result_size);
        }
        AppendError(out, thrown);
        start = ran + 1;
      } else {
        out.clear();
        PutResultsHeader(out, kChunk, h);
      }
    } else {
      PutResultsHeader(out, kChunk, h);
    }
    // One task after another, each result encoded (AppendOk / AppendError).
    bool same_size = start == 0;  // every result OK with one payload size below 128 bytes
    size_t result_size = 0;
    for (uint32_t i = 0; i < h.count; ++i) {
      absl::StatusOr<absl::Span<const uint8_t>> args =
          fixed_items != nullptr
              ? absl::StatusOr<absl::Span<const uint8_t>>(
                    absl::Span<const uint8_t>(fixed_items + size_t{i} * item_size, item_size))
              : ReadBlob(r, "task arguments");
      if (!args.ok()) return args.status();
      if (i < start) continue;  // ran in the batch above
      const size_t before = out.size();
      slot->job.store(h.job, std::memory_order_relaxed);
      slot->index.store(h.first + i, std::memory_order_relaxed);
      slot->running.store(1, std::memory_order_release);
      if (fn == nullptr) {
        AppendError(out, absl::NotFoundError(absl::StrCat(
                             "Pool worker: no registered task function \"", last_name, "\"")));
      } else {
        fn(*args, out);  // catches what the task throws
      }
      slot->running.store(0, std::memory_order_release);
      if (same_size) {
        const size_t len = out.size() - before;
        same_size = len >= 2 && len - 2 < 128 && out[before] == 0 &&
                    static_cast<uint8_t>(out[before + 1]) == len - 2 &&
                    (i == 0 || len - 2 == result_size);
        result_size = len - 2;
      }
    }
    if (same_size && h.count > 0) {
      // Compact form: drop the per-item tag and length.
      std::string compact;
      compact.reserve(kHeader + 4 + result_size * h.count);
      compact.push_back(static_cast<char>(kFixedResults));
      compact.append(out, 1, kHeader - 1);
      PutU32(compact, static_cast<uint32_t>(result_size));
      for (uint32_t i = 0; i < h.count; ++i) {
        compact.append(out, kHeader + i * (result_size + 2) + 2, result_size);
      }
      out.swap(compact);
    }
    if (absl::Status s = conn.SendBytes(out); !s.ok()) {
      return s.code() == absl::StatusCode::kAborted ? absl::OkStatus() : s;
    }
  }
}

// The worker process's target. Nothing the loop throws leaves it: under the fork start method the
// frames below this one are a copy of the pool's process's, and unwinding into them would run the
// parent's code (its catch blocks, its destructors) in the worker.
absl::Status PoolWorkerMain(PassedFd conn_fd, ShmHandle slots, int64_t slot_index,
                            std::string init_function, std::string init_args) {
  try {
    return PoolWorkerLoop(conn_fd, slots, slot_index, init_function, init_args);
  } catch (...) {
    try {
      return CurrentExceptionStatus("the pool's worker loop");
    } catch (...) {
      std::abort();  // formatting the status threw (out of memory): die here rather than unwind
    }
  }
}

// ---- The pool's side ----

struct Chunk {
  std::shared_ptr<Job> job;
  uint64_t job_id = 0;
  std::shared_ptr<const Batch> batch;
  const std::string* function = nullptr;
  size_t first = 0;  // index of the first item in the job (and in the batch)
  size_t count = 0;
  uint64_t number = 0;  // its number among the chunks sent to its worker (Slot::claimed)
  int64_t sent_ns = 0;  // when it was sent (MonotonicNowNs)
};

// The sending side of a worker's socket (a dup of Worker::conn's descriptor).
struct Outbox {
  explicit Outbox(Connection c) : conn(std::move(c)) {}
  Connection conn;
  size_t sndbuf = 0;  // the socket's send buffer (SO_SNDBUF, as the kernel counts it)
  // Its messages queued for or in the sender. Guarded by PoolImpl::send_mu_ (another object's
  // mutex, which the annotations cannot name here).
  int queued = 0;
};

// Whether `size` more bytes fit in the socket's send buffer now, so that a send cannot block: the
// bytes already queued (SIOCOUTQ, which counts as the kernel's limit does) plus the message plus a
// slack for the kernel's per-buffer overhead stay below SO_SNDBUF (a Unix stream socket blocks a
// send only when the bytes it holds reach SO_SNDBUF). Only the pool sends on the socket, and the
// worker only drains it, so the room can only grow until the pool sends again.
bool FitsWithoutBlocking(const Outbox& out, size_t size) {
  constexpr size_t kSlack = size_t{64} << 10;
  int queued = 0;
  if (ioctl(out.conn.fd(), SIOCOUTQ, &queued) != 0 || queued < 0) return false;
  return size + static_cast<size_t>(queued) + kSlack <= out.sndbuf;
}

struct Worker {
  explicit Worker(Process p) : process(std::move(p)) {}
  Process process;
  Connection conn;              // the manager thread receives on it
  std::shared_ptr<Outbox> out;  // the manager or the sender thread sends on it
  int slot = 0;
  int pid = 0;
  int sentinel = -1;
  std::deque<Chunk> outstanding;  // sent to it, in order; not yet answered nor taken back
  uint64_t sent = 0;              // the number of the last chunk sent to it (Slot::claimed)
  // Chunks were taken back from it that it may not have read yet: until it has read everything
  // sent to it, it counts as busy (a stopped worker must not get the same chunks again).
  bool took_back = false;
  size_t last_length = 0;  // of its last message: the size of buffer to receive the next one in
  int64_t chunks_done = 0;
  bool stopping = false;
};

// How long a chunk sent to a worker may wait unstarted, with its worker running nothing else,
// before an idle worker may take it: such a worker may be stopped (SIGSTOP, a debugger) or starved.
// Taking a chunk back is always safe (Slot::claimed), so this only bounds how long a task can wait
// behind a stuck idle worker.
constexpr int64_t kStartGraceNs = int64_t{20} * 1000 * 1000;

class PoolImpl {
 public:
  PoolImpl(std::shared_ptr<StartMethod> method, PoolOptions options, ShmSegment slots,
           uint64_t slots_offset, int wake_fd)
      : method_(std::move(method)),
        options_(std::move(options)),
        slots_(std::move(slots)),
        slots_offset_(slots_offset),
        wake_fd_(wake_fd) {}
  ~PoolImpl() {
    if (thread_.joinable()) {
      Terminate();
      thread_.join();
    }
    close(wake_fd_);
  }

  absl::Status StartWorkers() {
    for (int i = 0; i < options_.processes; ++i) {
      absl::StatusOr<Worker> w = StartWorker(i);
      if (!w.ok()) {
        for (Worker& started : workers_) {
          started.process.Kill().IgnoreError();
          started.process.Join().IgnoreError();
        }
        workers_.clear();
        return w.status();
      }
      workers_.push_back(*std::move(w));
    }
    sender_ = std::thread([this] { RunSender(); });
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  absl::Status Submit(std::shared_ptr<Job> job, const std::string& function, Batch batch,
                      size_t chunksize) {
    // The batch's bytes go back to the buffers when its last chunk is done.
    std::shared_ptr<const Batch> shared(
        new Batch(std::move(batch)), [buffers = std::weak_ptr<Buffers>(buffers_)](const Batch* b) {
          Buffers::GiveBack(buffers, std::move(const_cast<Batch*>(b)->bytes));
          delete b;
        });
    const uint64_t id = next_job_.fetch_add(1) + 1;
    {
      MutexLock lock(&mu_);
      if (!broken_.ok()) return broken_;
      if (closed_ || terminated_) {
        return absl::FailedPreconditionError(
            absl::StrCat("Pool: ", job->what(), " submitted to a pool that is ",
                         terminated_ ? "terminated" : "closed", " (Pool not running)"));
      }
      for (size_t first = 0; first < shared->size(); first += chunksize) {
        pending_.push_back(
            Chunk{job, id, shared, &function, first, std::min(chunksize, shared->size() - first)});
      }
    }
    Wake();
    return absl::OkStatus();
  }

  std::string TakeBuffer(size_t size) { return buffers_->Take(size); }

  void Close() {
    {
      MutexLock lock(&mu_);
      closed_ = true;
    }
    Wake();
  }
  void Terminate() {
    {
      MutexLock lock(&mu_);
      terminated_ = true;
    }
    Wake();
  }
  absl::Status Join(absl::Duration timeout) {
    const Deadline deadline = Deadline::After(timeout);
    {
      MutexLock lock(&mu_);
      if (!closed_ && !terminated_) {
        return absl::FailedPreconditionError("Pool::Join: call Close or Terminate first");
      }
      if (!mu_.Await(done_cv_, deadline,
                     [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; })) {
        return absl::DeadlineExceededError(absl::StrCat("Pool::Join: workers still running after ",
                                                        absl::FormatDuration(timeout)));
      }
    }
    MutexLock lock(&join_mu_);
    if (thread_.joinable()) thread_.join();
    return absl::OkStatus();
  }

  int processes() const { return options_.processes; }
  std::vector<int> WorkerPids() const {
    MutexLock lock(&mu_);
    return pids_;
  }

 private:
  absl::StatusOr<Worker> StartWorker(int slot) {
    Slot* s = SlotAt(slot);  // the previous worker of this slot is gone
    s->running.store(0, std::memory_order_relaxed);
    s->job.store(0, std::memory_order_relaxed);
    s->claimed.store(0, std::memory_order_relaxed);
    absl::StatusOr<std::pair<Connection, Connection>> pipe = Pipe(true);
    if (!pipe.ok()) return pipe.status();
    Connection conn = std::move(pipe->first);
    // The worker's end travels as a plain descriptor that this process closes right after Start, so
    // that a dead worker's socket is closed (sends to it fail instead of blocking).
    Connection child_end = std::move(pipe->second);
    const int dup_fd = fcntl(conn.fd(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return ErrnoStatus(errno, "Pool: dup of a worker's socket");
    absl::StatusOr<Connection> out = Connection::FromFd(dup_fd);
    if (!out.ok()) {
      close(dup_fd);
      return out.status();
    }
    absl::StatusOr<Process> p = Process::Create(
        method_,
        Call<&PoolWorkerMain>(PassedFd{child_end.fd()}, ShmHandle{slots_, slots_offset_},
                              int64_t{slot}, options_.initializer.function,
                              options_.initializer.args),
        ProcessOptions{.name = absl::StrCat("PoolWorker-", ++worker_count_), .daemon = true});
    if (!p.ok()) return p.status();
    absl::Status started = p->Start();
    child_end.Close();
    if (!started.ok()) return started;
    Worker w(*std::move(p));
    w.slot = slot;
    w.conn = std::move(conn);
    w.out = std::make_shared<Outbox>(*std::move(out));
    // Room for two outstanding chunks of the common sizes, so most sends need no thread hop (the
    // kernel caps the request at net.core.wmem_max and doubles it).
    const int want = 1 << 20;
    setsockopt(w.out->conn.fd(), SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
    int sndbuf = 0;
    socklen_t len = sizeof(sndbuf);
    if (getsockopt(w.out->conn.fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 && sndbuf > 0) {
      w.out->sndbuf = static_cast<size_t>(sndbuf);
    }
    w.pid = w.process.Pid().value_or(0);
    absl::StatusOr<int> sentinel = w.process.Sentinel();
    if (!sentinel.ok()) return sentinel.status();
    w.sentinel = *sentinel;
    MutexLock lock(&mu_);
    pids_.push_back(w.pid);
    return w;
  }

  // Sends `message` to a worker without ever blocking the manager thread (a worker blocked sending
  // its results while its own receive buffer is full must always get drained): directly when the
  // socket has room and nothing of this worker's is queued before it (no thread hop: the common
  // case), otherwise through the sender thread, in order.
  void Send(const std::shared_ptr<Outbox>& to, std::string message) {
    {
      MutexLock lock(&send_mu_);
      if (to->queued > 0 || !FitsWithoutBlocking(*to, message.size())) {
        ++to->queued;
        sends_.emplace_back(to, std::move(message));
        send_cv_.notify_one();
        return;
      }
    }
    // Nothing for this worker is queued or being sent, and only this thread queues: send here.
    // A failed send means the worker is dying; its sentinel tells the manager thread.
    to->conn.SendBytes(message).IgnoreError();
    buffers_->Give(std::move(message));
  }

  void RunSender() {
    for (;;) {
      std::pair<std::shared_ptr<Outbox>, std::string> next;
      {
        MutexLock lock(&send_mu_);
        send_mu_.Await(send_cv_, Deadline::Never(),
                       [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_) {
                         return !sends_.empty() || stop_sender_;
                       });
        if (sends_.empty()) return;
        next = std::move(sends_.front());
        sends_.pop_front();
      }
      // A failed send means the worker is dying; its sentinel tells the manager thread.
      next.first->conn.SendBytes(next.second).IgnoreError();
      buffers_->Give(std::move(next.second));
      MutexLock lock(&send_mu_);
      --next.first->queued;  // only now may the manager send to this worker directly again
    }
  }

  void StopSender() {
    {
      MutexLock lock(&send_mu_);
      stop_sender_ = true;
      sends_.clear();
    }
    send_cv_.notify_one();
    if (sender_.joinable()) sender_.join();
  }

  void Wake() {
    const uint64_t one = 1;
    ssize_t n;
    do {
      n = write(wake_fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }

  std::string ChunkMessage(const Chunk& c) const {
    const Batch& b = *c.batch;
    // Header and name, then the items (fixed: raw; else each behind a varint of at most 5 bytes).
    const size_t size =
        32 + c.function->size() +
        (b.fixed_size > 0 ? c.count * b.fixed_size
                          : b.offsets[c.first + c.count] - b.offsets[c.first] + 5 * c.count);
    std::string m = buffers_->Take(size);
    m.clear();
    m.reserve(size);
    m.push_back(static_cast<char>(b.fixed_size > 0 ? kFixedChunk : kChunk));
    PutU64(m, c.job_id);
    PutU64(m, c.first);
    PutU32(m, static_cast<uint32_t>(c.count));
    PutVarint(m, c.function->size());
    m.append(*c.function);
    if (b.fixed_size > 0) {
      PutU32(m, static_cast<uint32_t>(b.fixed_size));
      m.append(b.bytes.data() + c.first * b.fixed_size, c.count * b.fixed_size);
      return m;
    }
    for (size_t i = c.first; i < c.first + c.count; ++i) {
      const uint32_t len = b.offsets[i + 1] - b.offsets[i];
      PutVarint(m, len);
      m.append(b.bytes.data() + b.offsets[i], len);
    }
    return m;
  }

  Slot* SlotAt(int slot) const { return static_cast<Slot*>(slots_.At(slots_offset_)) + slot; }

  // Whether `w` may be given another chunk (maxtasksperchild counts the ones it holds).
  bool MayTake(const Worker& w) const {
    return !w.stopping &&
           (options_.maxtasksperchild == 0 ||
            w.chunks_done + static_cast<int64_t>(w.outstanding.size()) < options_.maxtasksperchild);
  }

  // Whether `w` has read every message sent to it: nothing waits in the sender thread's queue nor
  // in its socket (SIOCOUTQ counts the bytes it has not read).
  bool ReadEverything(const Worker& w) {
    {
      MutexLock lock(&send_mu_);
      if (w.out->queued > 0) return false;
    }
    int unread = 0;
    return ioctl(w.out->conn.fd(), SIOCOUTQ, &unread) == 0 && unread == 0;
  }

  // Whether `w` is free for a chunk: it may take one, holds none, and (after chunks were taken back
  // from it) has read everything sent to it.
  bool Idle(Worker& w) {
    if (!MayTake(w) || !w.outstanding.empty()) return false;
    if (w.took_back) {
      if (!ReadEverything(w)) return false;
      w.took_back = false;
    }
    return true;
  }

  std::optional<Chunk> TakePending() {
    MutexLock lock(&mu_);
    if (pending_.empty()) return std::nullopt;
    Chunk c = std::move(pending_.front());
    pending_.pop_front();
    return c;
  }

  bool PendingEmpty() const {
    MutexLock lock(&mu_);
    return pending_.empty();
  }

  void Assign(Worker& w, Chunk c) {
    c.number = ++w.sent;
    c.sent_ns = MonotonicNowNs();
    Send(w.out, ChunkMessage(c));
    w.outstanding.push_back(std::move(c));
  }

  // Gives one pending chunk to each idle worker. Returns whether an idle worker is left (nothing
  // was pending for it).
  bool AssignToIdle() {
    bool idle_left = false;
    for (Worker& w : workers_) {
      if (!Idle(w)) continue;
      std::optional<Chunk> c = TakePending();
      if (!c.has_value()) {
        idle_left = true;
        continue;
      }
      Assign(w, *std::move(c));
    }
    return idle_left;
  }

  // For an idle worker with nothing pending: takes back, into the front of the queue, the chunks
  // that other workers were given but have not started. From a worker running a chunk, at once
  // (its second chunk would wait for the first); from a worker that started none of its chunks,
  // once the first waited kStartGraceNs (the worker may be stopped). Slot::claimed decides each
  // race with the worker starting the chunk. Returns whether any chunk came back.
  bool TakeBackUnstarted() {
    const int64_t now = MonotonicNowNs();
    std::deque<Chunk> back;
    for (Worker& w : workers_) {
      if (w.outstanding.empty()) continue;
      std::atomic<uint64_t>& claimed = SlotAt(w.slot)->claimed;
      uint64_t c = claimed.load(std::memory_order_acquire);
      bool taken = false;
      while (c < w.sent) {
        const bool running_one = w.outstanding.front().number <= c;
        if (!running_one && now - w.outstanding.front().sent_ns < kStartGraceNs) break;
        if (claimed.compare_exchange_weak(c, w.sent, std::memory_order_acq_rel)) {
          taken = true;
          break;
        }
      }
      if (!taken) continue;
      // Chunks up to c were started; the ones after it are ours again.
      auto first_back = std::find_if(w.outstanding.begin(), w.outstanding.end(),
                                     [c](const Chunk& chunk) { return chunk.number > c; });
      for (auto it = first_back; it != w.outstanding.end(); ++it) back.push_back(std::move(*it));
      w.outstanding.erase(first_back, w.outstanding.end());
      w.took_back = true;
    }
    if (back.empty()) return false;
    // Back to the front of the queue, oldest submission first.
    std::stable_sort(back.begin(), back.end(), [](const Chunk& a, const Chunk& b) {
      return a.job_id != b.job_id ? a.job_id < b.job_id : a.first < b.first;
    });
    MutexLock lock(&mu_);
    for (auto it = back.rbegin(); it != back.rend(); ++it) pending_.push_front(std::move(*it));
    return true;
  }

  // When the manager must look again without an event (Never() if it need not): when the grace
  // of a chunk that is still unstarted ends, and, while work waits (pending, or held unstarted),
  // every kStartGraceNs for a worker that chunks were taken back from to have read them (reading
  // them sends nothing).
  Deadline NextCheck() {
    const int64_t now = MonotonicNowNs();
    int64_t at = INT64_MAX;
    bool work_waits = !PendingEmpty();
    bool took_back = false;
    for (const Worker& w : workers_) {
      took_back = took_back || (w.took_back && w.outstanding.empty());
      if (w.outstanding.empty()) continue;
      const uint64_t claimed = SlotAt(w.slot)->claimed.load(std::memory_order_acquire);
      if (claimed >= w.sent) continue;  // everything it holds has started
      work_waits = true;
      const Chunk& front = w.outstanding.front();
      if (claimed < front.number && front.sent_ns + kStartGraceNs > now) {
        at = std::min(at, front.sent_ns + kStartGraceNs);
      }
    }
    if (took_back && work_waits) at = std::min(at, now + kStartGraceNs);
    if (at == INT64_MAX) return Deadline::Never();
    return Deadline::After(absl::Nanoseconds(at - now));
  }

  // Gives pending chunks to workers, as CPython's workers take tasks from one queue when they are
  // free: one to each idle worker first; with a worker idle and nothing pending, the chunks that
  // busy workers hold unstarted come back for it; only when no worker is idle does a worker get a
  // second chunk, so that it need not wait for its next one (a chunk waiting there behind a long
  // task comes back as soon as another worker is idle). Then stop messages to idle workers of a
  // closed pool and to workers at maxtasksperchild.
  void Dispatch() {
    bool idle_left = AssignToIdle();
    if (idle_left && workers_.size() > 1 && PendingEmpty() && TakeBackUnstarted()) {
      idle_left = AssignToIdle();
    }
    if (!idle_left) {
      for (Worker& w : workers_) {
        if (w.outstanding.size() != 1 || !MayTake(w)) continue;
        std::optional<Chunk> c = TakePending();
        if (!c.has_value()) break;
        Assign(w, *std::move(c));
      }
    }
    for (Worker& w : workers_) {
      if (w.stopping) continue;
      bool stop = options_.maxtasksperchild > 0 && w.chunks_done >= options_.maxtasksperchild;
      if (!stop && w.outstanding.empty()) {
        MutexLock lock(&mu_);
        stop = closed_ && pending_.empty();
      }
      if (stop && w.outstanding.empty()) {
        Send(w.out, std::string(1, static_cast<char>(kStop)));
        w.stopping = true;
      }
    }
  }

  // Delivers one result message from `w`: msg[0, length). Not OK when the message is malformed.
  absl::Status HandleResults(Worker& w, std::string msg, size_t length) {
    ByteReader r(AsBytes(absl::string_view(msg.data(), length)));
    ChunkHeader h;
    if (absl::Status s = ReadHeader(r, &h); !s.ok()) return s;
    if (h.kind == kInitFailed) {
      absl::Status failure;
      absl::StatusOr<absl::Span<const uint8_t>> rest = r.ReadSpan(r.remaining(), "status");
      absl::Status decoded = rest.ok() ? DecodeInto(*rest, failure) : rest.status();
      if (!decoded.ok()) {
        failure =
            absl::UnknownError(absl::StrCat("its report did not decode: ", decoded.ToString()));
      }
      failure = AsFailure(std::move(failure));
      MutexLock lock(&mu_);
      broken_ = absl::FailedPreconditionError(
          absl::StrCat("Pool: the initializer failed in worker pid ", w.pid, ": ",
                       absl::StatusCodeToString(failure.code()), ": ", failure.message()));
      return absl::OkStatus();
    }
    if ((h.kind != kChunk && h.kind != kFixedResults) || w.outstanding.empty() ||
        w.outstanding.front().job_id != h.job || w.outstanding.front().first != h.first ||
        w.outstanding.front().count != h.count) {
      return absl::InternalError(absl::StrCat("Pool: unexpected message from worker pid ", w.pid));
    }
    Chunk c = std::move(w.outstanding.front());
    w.outstanding.pop_front();
    ++w.chunks_done;
    const size_t header_size = length - r.remaining();
    std::shared_ptr<const std::string> blob = buffers_->Share(std::move(msg));
    ByteReader br(AsBytes(absl::string_view(blob->data(), length)));
    br.ReadSpan(header_size, "header").IgnoreError();
    const uint8_t* base = reinterpret_cast<const uint8_t*>(blob->data());
    if (h.kind == kFixedResults) {
      uint32_t size = 0;
      if (absl::Status s = br.ReadLE(&size, "result size"); !s.ok()) return s;
      const size_t start = header_size + 4;
      if (length != start + size_t{size} * c.count) {
        return absl::InternalError("Pool: fixed-size results of the wrong length");
      }
      c.job->FinishFixed(c.first, c.count, blob, start, size);
      return absl::OkStatus();
    }
    std::vector<Job::Finished> results(c.count);
    for (size_t i = 0; i < c.count; ++i) {
      absl::StatusOr<uint8_t> tag = br.ReadByte("result tag");
      if (!tag.ok()) return tag.status();
      if (*tag == 0) {
        absl::StatusOr<absl::Span<const uint8_t>> payload = ReadBlob(br, "result");
        if (!payload.ok()) return payload.status();
        results[i].offset = static_cast<uint32_t>(payload->data() - base);
        results[i].length = static_cast<uint32_t>(payload->size());
      } else if (*tag == 1) {
        if (absl::Status s = ReadFailure(br, &results[i].status); !s.ok()) return s;
      } else {
        return absl::InternalError(absl::StrCat("Pool: result tag ", *tag, " from worker pid ",
                                                w.pid, " (0 or 1 expected)"));
      }
    }
    c.job->FinishRange(c.first, blob, results);
    return absl::OkStatus();
  }

  // Reads every message the worker has sent. False when its connection is at its end.
  bool Drain(Worker& w) {
    for (;;) {
      absl::StatusOr<bool> ready = w.conn.Poll(absl::ZeroDuration());
      if (!ready.ok() || !*ready) return ready.ok();
      std::string msg = buffers_->Take(w.last_length);
      size_t length = 0;
      if (!RecvReused(w.conn, msg, &length).ok()) return false;
      w.last_length = length;
      if (absl::Status s = HandleResults(w, std::move(msg), length); !s.ok()) {
        w.process.Kill().IgnoreError();  // a confused worker is replaced
        return false;
      }
    }
  }

  // The worker ended: settles its chunks and replaces it if there is work left.
  void HandleExit(size_t index) {
    Worker& w = workers_[index];
    Drain(w);
    w.process.Join().IgnoreError();
    absl::StatusOr<std::optional<int>> code = w.process.ExitCode();
    const std::optional<int> exit_code = code.ok() ? *code : std::nullopt;
    const bool clean = w.stopping && w.outstanding.empty() && exit_code == 0;
    if (!clean) {
      const std::string how = DescribeExit(w.pid, exit_code);
      const Slot* slot = SlotAt(w.slot);
      const bool running = slot->running.load(std::memory_order_acquire) != 0;
      const uint64_t job = slot->job.load(std::memory_order_relaxed);
      const uint64_t at = slot->index.load(std::memory_order_relaxed);
      std::deque<Chunk> requeue;
      for (size_t k = 0; k < w.outstanding.size(); ++k) {
        Chunk& c = w.outstanding[k];
        const bool in_chunk = k == 0 && job == c.job_id && at >= c.first && at < c.first + c.count;
        if (!in_chunk) {
          requeue.push_back(std::move(c));
          continue;
        }
        // Items before `at` ran (their results are lost), `at` killed the worker if it was running,
        // the rest never started.
        const size_t last_started = at;
        for (size_t i = c.first; i < last_started; ++i) {
          c.job->Finish(
              i, nullptr, 0, 0,
              absl::AbortedError(absl::StrCat("Pool: ", how, " while running task ", last_started,
                                              " of ", c.job->what(), "; the result of task ", i,
                                              " (same chunk) was lost with it")));
        }
        if (running) {
          c.job->Finish(at, nullptr, 0, 0,
                        absl::AbortedError(absl::StrCat("Pool: ", how, " while running task ", at,
                                                        " of ", c.job->what())));
        } else {
          c.job->Finish(
              at, nullptr, 0, 0,
              absl::AbortedError(absl::StrCat("Pool: ", how, " after running task ", at, " of ",
                                              c.job->what(), "; its result was lost")));
        }
        if (at + 1 < c.first + c.count) {
          Chunk rest = c;
          rest.count = c.first + c.count - (at + 1);
          rest.first = at + 1;
          requeue.push_back(std::move(rest));
        }
      }
      MutexLock lock(&mu_);
      for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) pending_.push_front(*it);
    }
    w.outstanding.clear();
    bool replace;
    {
      MutexLock lock(&mu_);
      pids_.erase(std::remove(pids_.begin(), pids_.end(), w.pid), pids_.end());
      replace = broken_.ok() && !terminated_ && (!closed_ || !pending_.empty());
    }
    const int slot_index = w.slot;
    w.process.Close().IgnoreError();
    workers_.erase(workers_.begin() + static_cast<ptrdiff_t>(index));
    if (replace) {
      absl::StatusOr<Worker> fresh = StartWorker(slot_index);
      if (fresh.ok()) {
        workers_.push_back(*std::move(fresh));
      } else {
        MutexLock lock(&mu_);
        broken_ = absl::FailedPreconditionError(absl::StrCat(
            "Pool: could not start a replacement worker: ", fresh.status().ToString()));
      }
    }
  }

  // Fails every queued and outstanding task with `status`.
  void FailAll(const absl::Status& status) {
    std::deque<Chunk> pending;
    {
      MutexLock lock(&mu_);
      pending.swap(pending_);
    }
    for (Chunk& c : pending) c.job->FailUnfinished(status);
    for (Worker& w : workers_) {
      for (Chunk& c : w.outstanding) c.job->FailUnfinished(status);
      w.outstanding.clear();
    }
  }

  void KillAll() {
    for (Worker& w : workers_) w.process.Kill().IgnoreError();
    for (Worker& w : workers_) {
      w.process.Join().IgnoreError();
      w.process.Close().IgnoreError();
    }
    workers_.clear();
    MutexLock lock(&mu_);
    pids_.clear();
  }

  void Run() {
    for (;;) {
      bool terminated, closed;
      absl::Status broken;
      {
        MutexLock lock(&mu_);
        terminated = terminated_;
        closed = closed_;
        broken = broken_;
      }
      if (terminated) {
        FailAll(absl::CancelledError("Pool: terminated before the task finished"));
        KillAll();
        break;
      }
      if (!broken.ok()) {
        FailAll(broken);
        if (closed) {
          KillAll();
          break;
        }
      }
      Dispatch();
      if (closed && workers_.empty()) break;
      std::vector<Waitable> objects;
      objects.reserve(2 * workers_.size() + 1);
      objects.emplace_back(wake_fd_);
      for (const Worker& w : workers_) {
        objects.emplace_back(w.conn);
        objects.emplace_back(w.sentinel);
      }
      absl::StatusOr<std::vector<size_t>> ready = Wait(objects, NextCheck().Remaining());
      if (!ready.ok()) {
        MutexLock lock(&mu_);
        broken_ =
            absl::InternalError(absl::StrCat("Pool: wait failed: ", ready.status().ToString()));
        terminated_ = true;
        continue;
      }
      std::vector<size_t> exited;
      for (size_t i : *ready) {
        if (i == 0) {
          uint64_t value;
          while (read(wake_fd_, &value, sizeof(value)) < 0 && errno == EINTR) {
          }
          continue;
        }
        const size_t wi = (i - 1) / 2;
        if ((i - 1) % 2 == 0) {
          if (!Drain(workers_[wi])) exited.push_back(wi);
        } else {
          exited.push_back(wi);
        }
      }
      std::sort(exited.begin(), exited.end());
      exited.erase(std::unique(exited.begin(), exited.end()), exited.end());
      for (auto it = exited.rbegin(); it != exited.rend(); ++it) HandleExit(*it);
    }
    StopSender();
    {
      MutexLock lock(&mu_);
      done_ = true;
    }
    done_cv_.notify_all();
  }

  const std::shared_ptr<StartMethod> method_;
  const PoolOptions options_;
  const ShmSegment slots_;
  const uint64_t slots_offset_;
  const int wake_fd_;
  const std::shared_ptr<Buffers> buffers_ = std::make_shared<Buffers>();
  std::atomic<uint64_t> next_job_{0};
  int worker_count_ = 0;  // manager thread (and Create) only

  // Manager thread only (after StartWorkers).
  std::vector<Worker> workers_;
  std::thread thread_;
  Mutex join_mu_;

  std::thread sender_;
  Mutex send_mu_;
  std::condition_variable send_cv_;
  std::deque<std::pair<std::shared_ptr<Outbox>, std::string>> sends_ ABSL_GUARDED_BY(send_mu_);
  bool stop_sender_ ABSL_GUARDED_BY(send_mu_) = false;

  mutable Mutex mu_;
  std::condition_variable done_cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // the manager thread has finished
  std::deque<Chunk> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool terminated_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  std::vector<int> pids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pool_internal

absl::StatusOr<Pool> Pool::Create(std::shared_ptr<StartMethod> method, PoolOptions options) {
  if (method == nullptr) return absl::InvalidArgumentError("Pool::Create: null start method");
  if (options.processes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Pool::Create: processes must be >= 0 (0: CpuCount()), got ", options.processes));
  }
  if (options.maxtasksperchild < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pool::Create: maxtasksperchild must be >= 0 (0: no limit), got ",
                     options.maxtasksperchild));
  }
  if (!options.initializer.function.empty() &&
      pool_internal::FindTask(options.initializer.function) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Pool::Create: initializer \"", options.initializer.function, "\" is not registered"));
  }
  if (options.processes == 0) options.processes = std::max(1, CpuCount());
  // The workers' slots live in a transferable segment, which every start method can pass.
  absl::StatusOr<ShmSegment> slots =
      ShmSegment::Create(ShmDomain::kTransferable,
                         sizeof(pool_internal::Slot) * static_cast<size_t>(options.processes));
  if (!slots.ok()) return slots.status();
  absl::StatusOr<uint64_t> slots_offset =
      slots->Allocate(sizeof(pool_internal::Slot) * static_cast<size_t>(options.processes));
  if (!slots_offset.ok()) return slots_offset.status();
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) return ErrnoStatus(errno, "Pool::Create: eventfd");
  auto impl = std::make_unique<pool_internal::PoolImpl>(std::move(method), std::move(options),
                                                        *std::move(slots), *slots_offset, wake);
  if (absl::Status s = impl->StartWorkers(); !s.ok()) return s;
  return Pool(std::move(impl));
}

Pool::Pool(std::unique_ptr<pool_internal::PoolImpl> impl) : impl_(std::move(impl)) {}
Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&&) noexcept = default;
Pool::~Pool() = default;

absl::Status Pool::Submit(std::shared_ptr<pool_internal::Job> job, const std::string& function,
                          pool_internal::Batch batch, size_t chunksize) {
  if (impl_ == nullptr) return absl::FailedPreconditionError("Pool: moved-from pool");
  return impl_->Submit(std::move(job), function, std::move(batch), chunksize);
}

std::string Pool::TakeBuffer(size_t size) {
  std::string b = impl_ == nullptr ? std::string() : impl_->TakeBuffer(size);
  b.clear();
  return b;
}

size_t Pool::DefaultChunksize(size_t items) const {
  const size_t parts = 4 * static_cast<size_t>(impl_ == nullptr ? 1 : impl_->processes());
  return std::max<size_t>(1, (items + parts - 1) / parts);
}

void Pool::Close() {
  if (impl_ != nullptr) impl_->Close();
}
void Pool::Terminate() {
  if (impl_ != nullptr) impl_->Terminate();
}
absl::Status Pool::Join(absl::Duration timeout) {
  if (impl_ == nullptr) return absl::FailedPreconditionError("Pool: moved-from pool");
  return impl_->Join(timeout);
}
int Pool::processes() const { return impl_ == nullptr ? 0 : impl_->processes(); }
std::vector<int> Pool::WorkerPids() const {
  return impl_ == nullptr ? std::vector<int>{} : impl_->WorkerPids();
}

}  // namespace mp
