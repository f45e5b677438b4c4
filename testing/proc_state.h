// Copyright 2026 The mp Authors.
//
// testing/proc_state.h — the scheduler state of a process or thread, for tests that must wait
// until another process or thread is asleep in a blocking call before they act (no sleeps).
//
//   while (!mp::testing::IsSleeping(tid)) std::this_thread::yield();
//   while (!mp::testing::IsSleepingInPoll(tid)) {}   // asleep in poll(2) / ppoll(2) itself
//   if (!mp::testing::AwaitSleep(pid)) ...            // it ended instead of falling asleep

#ifndef MP_TESTING_PROC_STATE_H_
#define MP_TESTING_PROC_STATE_H_

#include <sys/syscall.h>
#include <sys/types.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace mp::testing {

// The state letter of /proc/<id>/stat ('R', 'S', 'Z', ...) for a process or a thread id, or '?' if
// it cannot be read.
inline char ProcState(pid_t id) {
  std::ifstream stat("/proc/" + std::to_string(id) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close_paren = line.rfind(')');  // the name may hold spaces and parentheses
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return '?';
  return line[close_paren + 2];
}

// True once process or thread `id` is asleep in the kernel (state 'S').
inline bool IsSleeping(pid_t id) { return ProcState(id) == 'S'; }

// The number of the system call process or thread `id` is blocked in, from /proc/<id>/syscall: -1
// while it is not blocked in one (the file says "running"), -2 if the file cannot be read (another
// user's process, a kernel without CONFIG_HAVE_ARCH_TRACEHOOK).
inline long CurrentSyscall(pid_t id) {
  std::ifstream file("/proc/" + std::to_string(id) + "/syscall");
  std::string first;
  if (!(file >> first)) return -2;
  if (first == "running") return -1;
  char* end = nullptr;
  const long nr = std::strtol(first.c_str(), &end, 10);
  return end != first.c_str() && *end == '\0' ? nr : -2;
}

// True once `id` is blocked in poll(2) or ppoll(2): for a waiter that sleeps in stages (a futex
// first, then poll), "past the first stage". Where /proc/<id>/syscall cannot be read, asleep at all.
inline bool IsSleepingInPoll(pid_t id) {
  const long nr = CurrentSyscall(id);
  if (nr == -2) return IsSleeping(id);
#ifdef SYS_poll
  if (nr == SYS_poll) return true;
#endif
  return nr == SYS_ppoll;
}

// Spins until `id` is asleep (in poll(2) or ppoll(2) if `in_poll`) and returns true, or until it
// has ended (a zombie, or gone) and returns false: a waiter never spins forever on a process that
// will not sleep again.
inline bool AwaitSleep(pid_t id, bool in_poll = false) {
  for (;;) {
    const char state = ProcState(id);
    if (state == 'Z' || state == 'X' || state == '?') return false;
    if (state == 'S' && (!in_poll || IsSleepingInPoll(id))) return true;
  }
}

}  // namespace mp::testing

#endif  // MP_TESTING_PROC_STATE_H_
