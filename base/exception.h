// Copyright 2026 The mp Authors.
//
// base/exception.h — naming the exception being handled, for the boundaries where mp catches what
// user code throws (a Process's target, a Pool task) so it never escapes mp.
//
//   try { ... } catch (...) {
//     return absl::UnknownError(absl::StrCat("Pool: F threw ", mp::CurrentExceptionDescription()));
//   }

#ifndef MP_BASE_EXCEPTION_H_
#define MP_BASE_EXCEPTION_H_

#include <string>

namespace mp {

// Inside a catch block: "<demangled type>: <what()>" for a std::exception, "<demangled type>" for
// anything else ("int"), "no exception" outside a catch block. Never throws.
std::string CurrentExceptionDescription();

}  // namespace mp

#endif  // MP_BASE_EXCEPTION_H_
