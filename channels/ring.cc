// Copyright 2026 The mp Authors.

#include "channels/ring.h"

namespace mp::ring {

int64_t& SpinBudgetNs() {
  thread_local int64_t budget = kMaxSpinNs;
  return budget;
}

}  // namespace mp::ring
