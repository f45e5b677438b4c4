// Copyright 2026 The mp Authors.
//
// mp.h — the umbrella header of @mp//:mp. Include this one file to use mp.
//
// It grows with the library: serialize/ today; start methods, channels, sync and Context as they land.

#ifndef MP_CONTEXT_MP_H_
#define MP_CONTEXT_MP_H_

#include "serialize/codec.h"  // IWYU pragma: export
#include "serialize/fd.h"     // IWYU pragma: export
#include "serialize/flat.h"   // IWYU pragma: export
#include "serialize/frame.h"  // IWYU pragma: export

#endif  // MP_CONTEXT_MP_H_
