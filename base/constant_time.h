// Copyright 2026 The mp Authors.
//
// base/constant_time.h — equality of secrets (MACs, authkeys) in time that depends only on their
// lengths, never on where they first differ.

#ifndef MP_BASE_CONSTANT_TIME_H_
#define MP_BASE_CONSTANT_TIME_H_

#include "absl/strings/string_view.h"

namespace mp {

// True when `a` and `b` hold the same bytes. Different lengths compare unequal at once (lengths of
// MACs are public).
bool ConstantTimeEqual(absl::string_view a, absl::string_view b);

}  // namespace mp

#endif  // MP_BASE_CONSTANT_TIME_H_
