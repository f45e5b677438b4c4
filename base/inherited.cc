// Copyright 2026 The mp Authors.

#include "base/inherited.h"

#include <atomic>

namespace mp {
namespace {

// Constant-initialized (no constructor runs), so registering from any static initializer is safe.
std::atomic<InheritedCloser> closers[kMaxInheritedClosers];
std::atomic<int> count{0};

}  // namespace

void RegisterInheritedCloser(InheritedCloser closer) {
  const int i = count.fetch_add(1, std::memory_order_acq_rel);
  if (i < kMaxInheritedClosers) closers[i].store(closer, std::memory_order_release);
}

void CloseInherited(absl::Span<const int> keep) {
  const int n = count.load(std::memory_order_acquire);
  for (int i = 0; i < n && i < kMaxInheritedClosers; ++i) {
    if (InheritedCloser c = closers[i].load(std::memory_order_acquire); c != nullptr) c(keep);
  }
}

}  // namespace mp
