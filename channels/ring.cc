// Copyright 2026 The mp Authors.

#include "channels/ring.h"

namespace mp::ring {

int64_t& SpinBudgetNs() {
  thread_local int64_t budget = kMaxSpinNs;
  return budget;
}

int64_t& WokePeerAtNs() {
  thread_local int64_t at = INT64_MIN / 2;
  return at;
}

}  // namespace mp::ring
