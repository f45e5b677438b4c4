// Copyright 2026 The mp Authors.

#include "start_methods/target.h"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "start_methods/process.h"

namespace mp::process_internal {
namespace {

struct Registered {
  const void* key;
  DecodeCall decode;
  const std::string* name;
};

struct FunctionRegistry {
  std::mutex mu;
  std::map<std::string, Registered, std::less<>> by_name;
};

FunctionRegistry& Registry() {
  static FunctionRegistry* const registry = new FunctionRegistry;
  return *registry;
}

}  // namespace

int StatusExitCode(const absl::Status& s) {
  if (s.ok()) return 0;
  ProcessInfo self = CurrentProcess();
  std::string line = absl::StrCat("mp: process '", self.name, "' (pid ", self.pid,
                                  "): target failed: ", s.ToString(), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  return 1;
}

const std::string* RegisterFunction(std::string name, const void* key, DecodeCall decode) {
  FunctionRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::string candidate = name;
  for (int suffix = 2;; ++suffix) {
    auto it = r.by_name.find(candidate);
    if (it == r.by_name.end()) break;
    if (it->second.key == key) return it->second.name;
    candidate = absl::StrCat(name, "#", suffix);
  }
  const std::string* stored = new std::string(candidate);
  r.by_name.emplace(candidate, Registered{key, decode, stored});
  return stored;
}

absl::StatusOr<DecodeCall> FindFunction(absl::string_view name) {
  FunctionRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) {
    return absl::NotFoundError(absl::StrCat(
        "mp: no function named '", name, "' is registered in this program (pid ", getpid(),
        "); a spawn or forkserver child must run the same executable as its parent"));
  }
  return it->second.decode;
}

std::string QualifiedNameFromPrettyFunction(absl::string_view pretty) {
  // GCC: "... QualifiedName() [with auto F = shop::Worker; std::string = ...]"
  // Clang: "... QualifiedName() [F = &shop::Worker]"
  size_t start = pretty.find("F = ");
  if (start == absl::string_view::npos) return std::string(pretty);
  start += 4;
  if (start < pretty.size() && pretty[start] == '&') ++start;
  int depth = 0;
  size_t end = start;
  for (; end < pretty.size(); ++end) {
    char c = pretty[end];
    if (c == '<' || c == '(' || c == '[') ++depth;
    if (c == '>' || c == ')') --depth;
    if (c == ']') {
      if (depth == 0) break;
      --depth;
    }
    if (c == ';' && depth == 0) break;
  }
  return std::string(pretty.substr(start, end - start));
}

}  // namespace mp::process_internal
