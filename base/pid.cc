// Copyright 2026 The mp Authors.

#include "base/pid.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>

namespace mp {
namespace {

std::atomic<pid_t> g_pid{0};

void RefreshInChild() { g_pid.store(getpid(), std::memory_order_relaxed); }

}  // namespace

pid_t CurrentPid() {
  pid_t pid = g_pid.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  // First use: register the child handler once, then cache. Two threads racing here both store
  // the same value; the handler is registered once by the static.
  static const bool registered = (pthread_atfork(nullptr, nullptr, &RefreshInChild), true);
  (void)registered;
  pid = getpid();
  g_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

}  // namespace mp
