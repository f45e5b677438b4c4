// Copyright 2026 The mp Authors.
//
// testing/proc_state.h — the scheduler state of a process or thread, for tests that must wait
// until another process or thread is asleep in a blocking call before they act (no sleeps).
//
//   while (!mp::testing::IsSleeping(tid)) std::this_thread::yield();

#ifndef MP_TESTING_PROC_STATE_H_
#define MP_TESTING_PROC_STATE_H_

#include <sys/types.h>

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

}  // namespace mp::testing

#endif  // MP_TESTING_PROC_STATE_H_
