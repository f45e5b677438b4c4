// Copyright 2026 The mp Authors.

#include "base/exception.h"

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "absl/strings/str_cat.h"

namespace mp {

std::string CurrentExceptionDescription() {
  std::exception_ptr current = std::current_exception();
  if (current == nullptr) return "no exception";
  std::string type = "an exception of unknown type";
  if (const std::type_info* info = abi::__cxa_current_exception_type(); info != nullptr) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info->name(), nullptr, nullptr, &status);
    type = status == 0 && demangled != nullptr ? demangled : info->name();
    std::free(demangled);
  }
  try {
    std::rethrow_exception(current);
  } catch (const std::exception& e) {
    return absl::StrCat(type, ": ", e.what());
  } catch (...) {
    return type;
  }
}

}  // namespace mp
