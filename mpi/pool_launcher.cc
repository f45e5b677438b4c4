// Copyright 2026 The mp Authors.

#include "mpi/pool_launcher.h"

#include <mpi.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "base/errno_status.h"
#include "base/mutex.h"
#include "mpi/child_link.h"
#include "mpi/runtime.h"
#include "pool/process_launcher.h"
#include "pool/slot.h"
#include "pool/task.h"
#include "pool/worker_loop.h"
#include "start_methods/process.h"

namespace mp::mpi_internal {
namespace {

using pool_internal::Slot;

// The kinds of a worker's messages (the header comment).
constexpr char kData = 'D';
constexpr char kClaim = 'C';
constexpr char kStart = 'S';
constexpr char kEnd = 'E';
constexpr char kLeave = 'L';
constexpr char kAnswer = 'A';
constexpr char kLeft = 'l';
constexpr size_t kClaimSize = 1 + 2 * 8;
constexpr size_t kStartSize = 1 + 3 * 8;

// The pool's short answers: static, so that such a send is freed at once and completes later.
const char kYes[2] = {kAnswer, 1};
const char kNo[2] = {kAnswer, 0};
const char kLeftMessage[1] = {kLeft};
// How long a leaving worker waits for the pool's answer.
constexpr absl::Duration kLeaveTimeout = absl::Seconds(10);

void PutU64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

// ---------------------------------------------------------------------------------------------
// The pool's side.

// The engine's transport to one mpi worker (header comment). Pump runs in the launcher's pump
// thread and in the engine's calls; everything is under one mutex, and nothing under it waits for
// the worker.
class ParentLink : public pool_internal::WorkerTransport {
 public:
  ParentLink(MPI_Comm comm, Slot* slot, int sentinel, int pidfd, int ready_fd, Process process,
             std::string what)
      : comm_(comm),
        slot_(slot),
        sentinel_(sentinel),
        pidfd_(pidfd),
        ready_fd_(ready_fd),
        process_(std::move(process)),
        what_(std::move(what)) {}

  ~ParentLink() override {
    {
      MutexLock lock(&mu_);
      absl::StatusOr<Hold> hold = Hold::Take();
      for (PendingSend& p : sends_) {
        int done = 0;
        if (hold.ok()) MPI_Test(&p.request, &done, MPI_STATUS_IGNORE);
        if (done) continue;
        if (hold.ok()) MPI_Request_free(&p.request);
        (void)p.bytes.release();  // MPI may still read it (the header comment)
      }
    }
    close(ready_fd_);
  }

  // Takes in what the worker sent; true if anything came or completed.
  bool Pump() {
    MutexLock lock(&mu_);
    return PumpLocked();
  }

  absl::Status Send(absl::string_view message) override {
    MutexLock lock(&mu_);
    // Not to a process known to be gone: Open MPI would try to reconnect to it, and a failed
    // connect leaves its TCP transport unreliable (later spawns hang).
    if (closed_ || gone_ || !broken_.ok() || PeerGone()) {
      return absl::AbortedError(absl::StrCat("mp: ", what_, " is gone"));
    }
    if (message.size() > kMaxPoolMessage) {
      return absl::InvalidArgumentError(absl::StrCat("mp: a message of ", message.size(),
                                                     " bytes to ", what_, " is over the limit of ",
                                                     kMaxPoolMessage));
    }
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return absl::AbortedError(hold.status().message());
    auto bytes = std::make_unique<std::string>();
    bytes->reserve(1 + message.size());
    bytes->push_back(kData);
    bytes->append(message.data(), message.size());
    PendingSend p{std::move(bytes), MPI_REQUEST_NULL};
    if (int rc = MPI_Isend(p.bytes->data(), static_cast<int>(p.bytes->size()), MPI_BYTE, 0,
                           kTagPoolDown, comm_, &p.request);
        rc != MPI_SUCCESS) {
      return MpiStatus(rc, absl::StrCat("sending to ", what_));
    }
    sends_.push_back(std::move(p));
    ++data_sent_;
    CompleteSends();
    return absl::OkStatus();
  }

  // Sends never block (they are queued).
  bool CanSendWithoutBlocking(size_t, bool) override { return true; }

  // What the worker's last claim said it had read (a send completes once MPI has the bytes, not
  // once the worker read them). An idle worker makes no claim: then false, as the engine wants of
  // a transport that is unsure.
  bool AllRead() override {
    MutexLock lock(&mu_);
    return peer_read_ >= data_sent_;
  }

  absl::Status Receive(std::string& buffer, size_t* length) override {
    absl::Duration pause = absl::Microseconds(20);
    for (;;) {
      const bool ended = ReadableNow(sentinel_);  // before the pump: what it sent is in by then
      {
        MutexLock lock(&mu_);
        PumpLocked();
        if (!inbox_.empty()) {
          buffer = std::move(inbox_.front());
          inbox_.pop_front();
          *length = buffer.size();
          UpdateReady();
          return absl::OkStatus();
        }
        if (!broken_.ok()) return broken_;
        if (closed_ || ended) {
          return absl::OutOfRangeError(absl::StrCat("mp: ", what_, " ended"));
        }
      }
      absl::SleepFor(pause);
      pause = std::min(pause * 2, absl::Milliseconds(2));
    }
  }

  absl::StatusOr<bool> Readable() override {
    MutexLock lock(&mu_);
    PumpLocked();
    return !inbox_.empty() || !broken_.ok() || closed_;
  }

  Waitable ReadWaitable() const override { return Waitable(ready_fd_); }

  void Close() override {
    MutexLock lock(&mu_);
    closed_ = true;
  }

  // Nothing more goes to the worker (it is being killed).
  void MarkGone() {
    MutexLock lock(&mu_);
    gone_ = true;
  }

 private:
  struct PendingSend {
    std::unique_ptr<std::string> bytes;
    MPI_Request request;
  };

  bool PeerGone() const { return pidfd_ >= 0 && ReadableNow(pidfd_); }

  // Sends `n` bytes of static storage (freed at once: it completes on its own).
  void SendStatic(const char* bytes, int n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    MPI_Request r = MPI_REQUEST_NULL;
    if (MPI_Isend(bytes, n, MPI_BYTE, 0, kTagPoolDown, comm_, &r) == MPI_SUCCESS) {
      MPI_Request_free(&r);
    }
  }

  // Frees the sends that completed, in order.
  void CompleteSends() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!sends_.empty()) {
      int done = 0;
      MPI_Test(&sends_.front().request, &done, MPI_STATUS_IGNORE);
      if (!done) return;
      sends_.pop_front();
    }
  }

  // The worker broke the protocol: no more is read from it, the engine's next Receive fails, and
  // the worker is killed (PumpLocked; its sentinel brings the engine's settling of its tasks).
  void Violation(absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    broken_ = absl::DataLossError(absl::StrCat("mp: ", what_, " sent ", what, "; it was killed"));
    gone_ = true;
  }

  // Makes ready_fd_ readable exactly while something waits for the engine.
  void UpdateReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool want = !inbox_.empty() || !broken_.ok();
    if (want == signalled_) return;
    uint64_t v = 1;
    if (want) {
      (void)!write(ready_fd_, &v, sizeof(v));
    } else {
      (void)!read(ready_fd_, &v, sizeof(v));
    }
    signalled_ = want;
  }

  // Takes in what came, then kills a worker that broke the protocol: outside the MPI hold (Kill
  // takes the Process's lock, which Process::Start holds while it takes a hold).
  bool PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool any = ReceiveAll();
    if (!broken_.ok() && !killed_) {
      killed_ = true;
      process_.Kill().IgnoreError();
    }
    return any;
  }

  bool ReceiveAll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return false;
    const size_t sends_before = sends_.size();
    CompleteSends();
    bool any = sends_.size() != sends_before;
    // A bounded batch per call, so that one busy worker does not starve the pump's others.
    for (int n = 0; n < 64 && broken_.ok(); ++n) {
      int flag = 0;
      MPI_Message message = MPI_MESSAGE_NULL;
      MPI_Status status;
      if (MPI_Improbe(0, kTagPoolUp, comm_, &flag, &message, &status) != MPI_SUCCESS) {
        Violation("a message MPI could not probe");
        break;
      }
      if (!flag) break;
      any = true;
      int count = 0;
      if (MPI_Get_count(&status, MPI_BYTE, &count) != MPI_SUCCESS || count < 1 ||
          static_cast<size_t>(count) > kMaxPoolMessage) {
        char none = 0;
        MPI_Mrecv(&none, 0, MPI_BYTE, &message, MPI_STATUS_IGNORE);  // drops it (truncated)
        Violation(absl::StrCat("a message of ", count, " bytes (1 to ", kMaxPoolMessage,
                               " are accepted)"));
        break;
      }
      std::string bytes(static_cast<size_t>(count), '\0');
      if (int rc = MPI_Mrecv(bytes.data(), count, MPI_BYTE, &message, MPI_STATUS_IGNORE);
          rc != MPI_SUCCESS) {
        Violation(MpiStatus(rc, "a message").message());
        break;
      }
      Apply(std::move(bytes));
    }
    UpdateReady();
    return any;
  }

  void Apply(std::string bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (bytes[0]) {
      case kData:
        bytes.erase(0, 1);
        inbox_.push_back(std::move(bytes));
        return;
      case kClaim: {
        if (bytes.size() != kClaimSize) break;
        const uint64_t read = GetU64(bytes.data() + 9);
        if (read > data_sent_) break;  // more than was sent
        peer_read_ = std::max(peer_read_, read);
        const bool yes = pool_internal::ClaimChunk(slot_, GetU64(bytes.data() + 1));
        if (!gone_) SendStatic(yes ? kYes : kNo, 2);
        return;
      }
      case kLeave:
        if (bytes.size() != 1) break;
        // After everything sent so far (one tag: in order), and nothing after it.
        if (!gone_) SendStatic(kLeftMessage, 1);
        gone_ = true;
        return;
      case kStart: {
        if (bytes.size() != kStartSize) break;
        const uint64_t job = GetU64(bytes.data() + 1);
        const uint64_t index = GetU64(bytes.data() + 9);
        const uint64_t timed_chunk = GetU64(bytes.data() + 17);
        slot_->job.store(job, std::memory_order_relaxed);
        slot_->index.store(index, std::memory_order_relaxed);
        slot_->running.store(1, std::memory_order_release);
        if (timed_chunk != 0) {
          pool_internal::RecordTimedTask(slot_, timed_chunk, index, MonotonicNowNs());
        }
        return;
      }
      case kEnd:
        if (bytes.size() != 1) break;
        pool_internal::RecordTimedTask(slot_, 0, 0, 0);
        slot_->running.store(0, std::memory_order_release);
        return;
      default:
        break;
    }
    Violation(absl::StrCat("a message of kind ", static_cast<int>(static_cast<uint8_t>(bytes[0])),
                           " and ", bytes.size(), " bytes"));
  }

  const MPI_Comm comm_;
  Slot* const slot_;
  const int sentinel_;  // the worker Process's
  const int pidfd_;     // the worker's process on this host (owned by its handle); -1 elsewhere
  const int ready_fd_;  // eventfd
  Process process_;     // the worker, killed for a violation
  const std::string what_;

  Mutex mu_;
  std::deque<std::string> inbox_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingSend> sends_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;       // the worker left or is being killed: send nothing
  bool killed_ ABSL_GUARDED_BY(mu_) = false;     // for a violation (PumpLocked)
  uint64_t data_sent_ ABSL_GUARDED_BY(mu_) = 0;  // engine messages sent
  uint64_t peer_read_ ABSL_GUARDED_BY(mu_) = 0;  // of them, read by the worker (its claims say)
  bool signalled_ ABSL_GUARDED_BY(mu_) = false;
};

// The thread that pumps every worker of a launcher: sleeps from 20 us growing to 1 ms while none
// sends anything, and without a timeout while the launcher has no worker.
class Pump {
 public:
  static absl::StatusOr<std::shared_ptr<Pump>> Create() {
    const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) return ErrnoStatus(errno, "eventfd for the mpi pool's pump");
    return std::shared_ptr<Pump>(new Pump(wake));
  }
  ~Pump() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    Wake();
    thread_.join();
    close(wake_fd_);
  }

  void Add(ParentLink* link) {
    {
      MutexLock lock(&mu_);
      links_.push_back(link);
    }
    Wake();
  }
  // Returns once the pump thread no longer uses `link`.
  void Remove(ParentLink* link) {
    MutexLock lock(&mu_);
    links_.erase(std::remove(links_.begin(), links_.end(), link), links_.end());
  }

 private:
  explicit Pump(int wake_fd) : wake_fd_(wake_fd) {
    thread_ = std::thread([this] { Run(); });
  }

  void Wake() {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }

  void Run() {
    absl::Duration pause = absl::Microseconds(20);
    for (;;) {
      bool any = false;
      bool idle = false;
      {
        MutexLock lock(&mu_);
        if (stopping_) return;
        for (ParentLink* link : links_) any = link->Pump() || any;
        idle = links_.empty();
      }
      pause = any ? absl::Microseconds(20) : std::min(pause * 2, absl::Milliseconds(1));
      if (PollUntil(wake_fd_, POLLIN, idle ? Deadline::Never() : Deadline::After(pause))
              .value_or(0) != 0) {
        uint64_t v = 0;
        (void)!read(wake_fd_, &v, sizeof(v));
      }
    }
  }

  const int wake_fd_;
  Mutex mu_;
  std::vector<ParentLink*> links_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The mpi method, noting the intercommunicator of the child it launches.
class NoteLink : public StartMethod {
 public:
  explicit NoteLink(std::shared_ptr<StartMethod> method) : method_(std::move(method)) {}
  absl::string_view Name() const override { return method_->Name(); }
  absl::Status CheckTarget(const Target& target) const override {
    return method_->CheckTarget(target);
  }
  absl::StatusOr<std::unique_ptr<ChildHandle>> Launch(const LaunchSpec& spec) override {
    absl::StatusOr<std::unique_ptr<ChildHandle>> handle = method_->Launch(spec);
    if (handle.ok()) {
      const auto* link = dynamic_cast<const ChildLink*>(handle->get());
      MutexLock lock(&mu_);
      comm_ = link != nullptr ? link->communicator() : MPI_COMM_NULL;
      if (link != nullptr) {
        host_ = link->host();
        pidfd_ = link->pidfd();
      }
    }
    return handle;
  }
  MPI_Comm comm() const {
    MutexLock lock(&mu_);
    return comm_;
  }
  std::string host() const {
    MutexLock lock(&mu_);
    return host_;
  }
  int pidfd() const {
    MutexLock lock(&mu_);
    return pidfd_;
  }

 private:
  const std::shared_ptr<StartMethod> method_;
  mutable Mutex mu_;
  MPI_Comm comm_ ABSL_GUARDED_BY(mu_) = MPI_COMM_NULL;
  std::string host_ ABSL_GUARDED_BY(mu_);
  int pidfd_ ABSL_GUARDED_BY(mu_) = -1;
};

class MpiWorker : public pool_internal::LaunchedWorker {
 public:
  MpiWorker(Process process, std::unique_ptr<ParentLink> link, std::shared_ptr<Pump> pump, int pid,
            int sentinel)
      : process_(std::move(process)),
        link_(std::move(link)),
        pump_(std::move(pump)),
        pid_(pid),
        sentinel_(sentinel) {
    pump_->Add(link_.get());
  }
  ~MpiWorker() override {
    pump_->Remove(link_.get());
    link_.reset();
    if (!reaped_) {
      process_.Kill().IgnoreError();
      process_.Join().IgnoreError();
    }
    process_.Close().IgnoreError();
  }

  pool_internal::WorkerTransport& transport() override { return *link_; }
  int pid() const override { return pid_; }
  int sentinel() const override { return sentinel_; }
  absl::Status Kill() override {
    link_->MarkGone();
    return process_.Kill();
  }
  std::optional<int> Reap() override {
    process_.Join().IgnoreError();
    reaped_ = true;
    absl::StatusOr<std::optional<int>> code = process_.ExitCode();
    return code.ok() ? *code : std::nullopt;
  }

 private:
  Process process_;
  std::unique_ptr<ParentLink> link_;
  const std::shared_ptr<Pump> pump_;
  const int pid_;
  const int sentinel_;
  bool reaped_ = false;
};

class MpiLauncher : public pool_internal::WorkerLauncher {
 public:
  MpiLauncher(std::shared_ptr<StartMethod> method, std::shared_ptr<Pump> pump)
      : method_(std::move(method)), pump_(std::move(pump)) {}

  absl::StatusOr<std::unique_ptr<pool_internal::LaunchedWorker>> Start(
      const pool_internal::WorkerSpec& spec) override {
    auto noted = std::make_shared<NoteLink>(method_);
    absl::StatusOr<Process> p = Process::Create(
        noted,
        Call<&MpiPoolWorkerMain>(int64_t{spec.index},
                                 pool_internal::ToWorkerInitializer(spec.initializer)),
        ProcessOptions{.name = spec.name, .daemon = true});
    if (!p.ok()) return p.status();
    if (absl::Status started = p->Start(); !started.ok()) return started;
    absl::StatusOr<int> sentinel = p->Sentinel();
    const MPI_Comm comm = noted->comm();
    if (!sentinel.ok() || comm == MPI_COMM_NULL) {
      p->Kill().IgnoreError();
      p->Join().IgnoreError();
      if (!sentinel.ok()) return sentinel.status();
      return absl::InternalError("mp: the mpi method gave no intercommunicator for a pool worker");
    }
    const int ready = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ready < 0) {
      const int err = errno;
      p->Kill().IgnoreError();
      p->Join().IgnoreError();
      return ErrnoStatus(err, "eventfd for an mpi pool worker");
    }
    const int pid = p->Pid().value_or(0);
    Slot* slot = static_cast<Slot*>(spec.slots.segment.At(spec.slots.offset)) + spec.index;
    const std::string host = noted->host();
    auto link = std::make_unique<ParentLink>(comm, slot, *sentinel, noted->pidfd(), ready, *p,
                                             absl::StrCat("pool worker ", spec.name, " (pid ", pid,
                                                          host.empty() ? "" : " on ", host, ")"));
    return std::unique_ptr<pool_internal::LaunchedWorker>(
        new MpiWorker(*std::move(p), std::move(link), pump_, pid, *sentinel));
  }

 private:
  const std::shared_ptr<StartMethod> method_;
  const std::shared_ptr<Pump> pump_;
};

// ---------------------------------------------------------------------------------------------
// The worker's side.

// The worker's transport and slot recorder: blocking MPI exchanges with its parent, each bounded,
// waiting as long as the parent lives (its pidfd on this host; Open MPI ends a child whose parent
// on another host died). The pool's messages come on one tag in order; the engine's messages that
// come while the worker waits for a claim's answer wait in `early_`.
class WorkerLink : public pool_internal::WorkerTransport, public pool_internal::SlotRecorder {
 public:
  WorkerLink(MPI_Comm parent, int parent_sentinel)
      : parent_(parent), parent_sentinel_(parent_sentinel) {}

  absl::Status Send(absl::string_view message) override {
    std::string out;
    out.reserve(1 + message.size());
    out.push_back(kData);
    out.append(message.data(), message.size());
    return Up(out);
  }
  bool CanSendWithoutBlocking(size_t, bool) override { return false; }
  bool AllRead() override { return false; }

  absl::Status Receive(std::string& buffer, size_t* length) override {
    if (!early_.empty()) {
      buffer = std::move(early_.front());
      early_.pop_front();
      *length = buffer.size();
      return absl::OkStatus();
    }
    for (;;) {
      absl::StatusOr<std::string> m = Down(Deadline::Never());
      if (!m.ok()) return m.status();
      if ((*m)[0] == kData) ++received_;
      if ((*m)[0] != kData) {
        return absl::DataLossError(absl::StrCat("mp: the pool sent a message of kind ",
                                                static_cast<int>(static_cast<uint8_t>((*m)[0])),
                                                " where a chunk was due"));
      }
      m->erase(0, 1);
      buffer = *std::move(m);
      *length = buffer.size();
      return absl::OkStatus();
    }
  }

  absl::StatusOr<bool> Readable() override {
    if (!early_.empty()) return true;
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return true;  // Receive reports the end
    int flag = 0;
    if (int rc = MPI_Iprobe(0, kTagPoolDown, parent_, &flag, MPI_STATUS_IGNORE);
        rc != MPI_SUCCESS) {
      return MpiStatus(rc, "probing for the pool's next message");
    }
    return flag != 0;
  }

  // Not watched: the loop runs without a parent sentinel and waits in Receive, which watches the
  // parent itself.
  Waitable ReadWaitable() const override { return Waitable(-1); }
  void Close() override {}

  absl::StatusOr<bool> Claim(uint64_t number) override {
    std::string out(1, kClaim);
    PutU64(out, number);
    PutU64(out, received_);
    if (absl::Status s = Up(out); !s.ok()) return s;
    for (;;) {
      absl::StatusOr<std::string> m = Down(Deadline::Never());
      if (!m.ok()) return m.status();
      if ((*m)[0] == kData) {
        ++received_;
        m->erase(0, 1);
        early_.push_back(*std::move(m));
        continue;
      }
      if (m->size() != 2 || (*m)[0] != kAnswer || static_cast<uint8_t>((*m)[1]) > 1) {
        return absl::DataLossError("mp: the pool's answer to a claim is not 'A' and a 0 or 1");
      }
      return (*m)[1] == 1;
    }
  }

  void TaskStarts(uint64_t job, uint64_t index, uint64_t timed_chunk) override {
    std::string out(1, kStart);
    PutU64(out, job);
    PutU64(out, index);
    PutU64(out, timed_chunk);
    Up(out).IgnoreError();  // a pool that is gone ends the loop at its next receive
  }
  void TaskEnds(bool timed) override {
    if (timed) Up(std::string(1, kEnd)).IgnoreError();
  }
  std::atomic<uint64_t>* BatchIndex(uint64_t) override { return nullptr; }

  // The leaving handshake (pool_launcher.h): says so, then takes in the pool's messages until its
  // answer, so that none is on its way when this process exits.
  void Leave() {
    if (!Up(std::string(1, kLeave)).ok()) return;
    const Deadline deadline = Deadline::After(kLeaveTimeout);
    for (;;) {
      absl::StatusOr<std::string> m = Down(deadline);
      if (!m.ok() || (*m)[0] == kLeft) return;
    }
  }

 private:
  absl::Status ParentAlive() const {
    if (parent_sentinel_ >= 0 && ReadableNow(parent_sentinel_)) {
      return absl::AbortedError("mp: the pool's process ended");
    }
    return absl::OkStatus();
  }

  absl::Status Up(absl::string_view bytes) {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return absl::AbortedError(hold.status().message());
    return SendBytes(parent_, kTagPoolUp, bytes, Deadline::Never(), "a message to the pool",
                     [this] { return ParentAlive(); });
  }

  // The pool's next message (at least one byte); kOutOfRange once the pool's process ended.
  absl::StatusOr<std::string> Down(Deadline deadline) {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return absl::OutOfRangeError(hold.status().message());
    absl::StatusOr<std::string> m =
        ReceiveBytes(parent_, kTagPoolDown, kMaxPoolMessage + 1, deadline,
                     "the pool's next message", [this] { return ParentAlive(); });
    if (!m.ok()) {
      return m.status().code() == absl::StatusCode::kAborted
                 ? absl::OutOfRangeError(m.status().message())
                 : m.status();
    }
    if (m->empty()) return absl::DataLossError("mp: the pool sent an empty message");
    return m;
  }

  const MPI_Comm parent_;
  const int parent_sentinel_;
  std::deque<std::string> early_;
  uint64_t received_ = 0;  // the pool's engine messages taken in (early_'s included)
};

const bool registered = [] {
  pool_internal::RegisterWorkerLauncher("mpi", &MakeMpiWorkerLauncher);
  return true;
}();

}  // namespace

absl::StatusOr<std::unique_ptr<pool_internal::WorkerLauncher>> MakeMpiWorkerLauncher(
    std::shared_ptr<StartMethod> method, const PoolInitializer&) {
  if (method == nullptr || method->Name() != "mpi") {
    return absl::InvalidArgumentError("mp: MakeMpiWorkerLauncher needs the mpi start method");
  }
  absl::StatusOr<std::shared_ptr<Pump>> pump = Pump::Create();
  if (!pump.ok()) return pump.status();
  return std::unique_ptr<pool_internal::WorkerLauncher>(
      new MpiLauncher(std::move(method), *std::move(pump)));
}

absl::Status MpiPoolWorkerMain(int64_t slot_index, pool_internal::WorkerInitializer init) {
  MPI_Comm parent = MPI_COMM_NULL;
  {
    absl::StatusOr<Hold> hold = Hold::Take();
    if (!hold.ok()) return hold.status();
    MPI_Comm_get_parent(&parent);
  }
  if (parent == MPI_COMM_NULL) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mp: pool worker ", slot_index, " was not started by the mpi method (no MPI parent)"));
  }
  const ParentHandle* p = ParentProcess();
  WorkerLink link(parent, p != nullptr ? p->Sentinel() : -1);
  absl::Status status;
  try {
    status = pool_internal::RunWorkerLoop(link, link, -1, std::move(init));
  } catch (...) {
    status = pool_internal::CurrentExceptionStatus("the mpi pool's worker loop");
  }
  link.Leave();
  return status;
}

}  // namespace mp::mpi_internal
