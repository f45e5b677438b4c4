// Copyright 2026 The mp Authors.
//
// tests/faults/kill_trial.h — kill trials: a victim process is SIGKILLed at a random point while it
// is inside a Queue, Connection, Lock, Barrier, Condition or manager call (or is a manager's
// server), and the survivors are checked.
//
// One trial = one scenario + one seed. The seed picks (with a seeded RNG, never the clock) how many
// operations the victim completes before it arms the killer and how many loop iterations the killer
// spins before it sends SIGKILL, plus the scenario's sizes and domains. Processes are sequenced
// with pipes; the only use of time is as an upper bound (every wait has a timeout, and a survivor
// that is still blocked past it fails the trial as a hang). Correctness checks never depend on
// timing.
//
//   absl::Status s = mp::faults::RunKillTrial(mp::faults::Scenario::kPut, /*seed=*/42);
//   // OK, or a status naming the scenario, the seed and the check that failed.
//
// After every trial, whatever the scenario, RunKillTrial checks that:
//   * no child is left (waitpid(-1, WNOHANG) is ECHILD) and /proc/self/fd holds exactly the
//     descriptors it held before the trial;
//   * no mp segment is still mapped (/proc/self/maps has no "memfd:mp-shm" mapping once the trial's
//     objects are destroyed). The objects under test live in memfds or anonymous memory, never in
//     /dev/shm, so there is nothing there to check per trial (and /dev/shm is shared with tests
//     running in parallel, e.g. shared_memory's named segments, so a before/after diff would be
//     racy). kSharedMemory covers mp's one /dev/shm user.
// The scenarios' own checks are listed at Scenario.
//
// The victims are forked (fork domain objects, or transferable ones on odd seeds, which exercise
// the memfd path), except kSpawnPut's, which mp::Process starts with spawn or a forkserver. Forked
// children never return into the caller: they _exit with a code that the parent checks. A program
// running kSpawnPut must call mp::Init(argc, argv) first (tests link //start_methods:test_main).
//
// Thread safety: RunKillTrial forks; call it from one thread of a process that has no other
// children to reap (the "no child left" check counts every child).

#ifndef MP_TESTS_FAULTS_KILL_TRIAL_H_
#define MP_TESTS_FAULTS_KILL_TRIAL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mp::faults {

enum class Scenario {
  // Victim producer killed in Queue::Put while a second producer puts 200 items and the parent
  // gets.
  // Every Put that returned OK (in either producer) is delivered exactly once, in order, untorn;
  // the
  // victim's interrupted Put is delivered at most once; the survivor never times out; the put side
  // is free afterwards and the queue still works.
  kPut,
  // Victim consumer killed in Queue::Get while a second consumer also gets from a pre-filled queue.
  // Every item is received at most once, untorn and in order per consumer; at most one item (the
  // one
  // Get already returned to the victim) is missing.
  kGet,
  // Victim killed in Connection::SendBytes on the socket transport (socket or one-way pipe,
  // messages up to 300 KiB that need several writes). The receiver gets messages 0..r-1 intact and
  // in order, then end of file (kOutOfRange) or a torn tail (kDataLoss), never a torn message; r is
  // the number of SendBytes that returned OK, or one more; the closed connection answers at once
  // afterwards.
  kSendBytes,
  // Victim killed in Connection::RecvBytes (socket transport) while the parent sends. The victim
  // saw only intact
  // messages in order; the parent's SendBytes ends with kAborted (broken pipe), never a hang or a
  // signal.
  kRecvBytes,
  // Victim killed holding or waiting for a Lock that a survivor also takes in a loop. If the victim
  // died holding it, exactly one later Acquire reports IsOwnerDied (and holds the lock); never
  // more;
  // the survivor never times out; the lock is free afterwards.
  kLockHolding,
  // Victim killed while blocked in Lock::Acquire on a lock the parent holds; a second waiter gets
  // the
  // lock (plainly, not IsOwnerDied) once the parent releases it; the victim never got it.
  kLockWaiting,
  // Victim killed in Barrier::Wait among three parties. Both survivors return kAborted within their
  // timeout (plus a margin), after the same number of completed generations; Reset() repairs it.
  kBarrierWait,
  // Victim killed in Condition::Wait (or holding the condition's lock). Notify(1) skips the dead
  // waiter and wakes the surviving one, which returns true well before its timeout.
  kConditionWait,
  // Like kPut, but the victim is a spawn child (odd seeds) or a child of a private forkserver (even
  // seeds) started through mp::Process, putting into a transferable Queue it received as an
  // argument, and killed with Process::Kill; its exit code must be -9 and it leaves no zombie.
  kSpawnPut,
  // Victim creating named SharedMemory segments (tracked, never unlinked) killed inside or between
  // Creates. After SharedMemory::ReclaimOrphans() no segment whose Create returned is left in
  // /dev/shm; the interrupted one may be left only in shared_memory.h's documented window (killed
  // between shm_open and its registry entry), and the trial removes it.
  kSharedMemory,
  // kSendBytes and kRecvBytes on the shared-memory transport (Pipe()'s default; duplex or one-way;
  // messages up to 300 KiB, so some travel in parts through the 256 KiB ring), same checks.
  kShmSendBytes,
  kShmRecvBytes,
  // A manager client killed mid-call (Dict Set, Queue Put, holding a manager Lock, making objects
  // of its own). Every Set that returned is there, untorn; the interrupted one is there whole or
  // not at all; every Put that returned is delivered once, in order, and the interrupted one at
  // most once; the lock is free (IsOwnerDied exactly when the victim could have held it); the
  // server drops every object the victim made (ObjectCount back to the parent's) and serves on.
  kManagerClient,
  // A manager's server killed while a client calls (and another client thread is blocked in a
  // Queue Get): every call returns; the first failure, and every call after it, is kUnavailable;
  // the blocked Get returns kUnavailable; nothing hangs.
  kManagerServer,
  // Like kPut with batches: the victim and the survivor put with PutMany (1 to 16 items at a time)
  // and the parent takes with GetMany (up to 16). Every item of a PutMany that returned OK is
  // delivered once, in order, untorn; of the interrupted batch, a prefix (possibly empty).
  kPutMany,
};
inline constexpr int kScenarioCount = 15;

// "Put", "Get", "SendBytes", ...
absl::string_view ScenarioName(Scenario scenario);

// The scenario trial number `i` of a run uses (round robin over all scenarios).
Scenario ScenarioForTrial(uint64_t i);

// Where the victim was when SIGKILL landed (the victim records it in shared memory as it goes).
enum class KillPhase : uint32_t {
  kOutside = 0,    // between calls (the kill still tests the survivors' view of a dead peer)
  kInside = 1,     // inside the call under test (Put, Get, SendBytes, RecvBytes, Acquire, Wait)
  kHolding = 2,    // holding the lock (LockHolding, or the condition's lock around Wait)
  kAcquiring = 3,  // acquiring the condition's lock before Wait
  kNotKilled = 4,  // the trial failed, or the victim ended on its own (BarrierWait on a slow box)
};
absl::string_view KillPhaseName(KillPhase phase);

struct TrialReport {
  KillPhase phase = KillPhase::kNotKilled;
};

// Runs one trial; OK if every check passed. Otherwise the status names the scenario, the seed and
// what went wrong (kInternal for a failed check, kDeadlineExceeded for a hang, or the failing
// system call's status). `report`, if not null, receives where the kill landed.
absl::Status RunKillTrial(Scenario scenario, uint64_t seed, TrialReport* report = nullptr);

}  // namespace mp::faults

#endif  // MP_TESTS_FAULTS_KILL_TRIAL_H_
