// Copyright 2026 The mp Authors.
//
// base/inherited.h — closing, in a fork child, what it inherited but was not given.
//
// A fork child inherits every descriptor its parent holds. Objects of other packages that hold
// descriptors (channels' Connection) register a closer here, once, from a static initializer; a
// child started with ProcessOptions::close_inherited_connections runs them all before its target,
// with the descriptors the target was given, which they keep. Nothing here knows those objects.

#ifndef MP_BASE_INHERITED_H_
#define MP_BASE_INHERITED_H_

#include "absl/types/span.h"

namespace mp {

// Closes the objects of one kind that hold a descriptor not in `keep`. Runs in a fork child while
// it is single-threaded.
using InheritedCloser = void (*)(absl::Span<const int> keep);

// At most kMaxInheritedClosers, registered before main (static initializers); later ones are
// ignored. Thread-safe.
inline constexpr int kMaxInheritedClosers = 8;
void RegisterInheritedCloser(InheritedCloser closer);

// Runs every registered closer, in registration order.
void CloseInherited(absl::Span<const int> keep);

}  // namespace mp

#endif  // MP_BASE_INHERITED_H_
