// Copyright 2026 The mp Authors.

#include "pool/task.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "base/exception.h"
#include "base/mutex.h"
#include "serialize/status.h"

namespace mp {
namespace pool_internal {
namespace {

struct Registry {
  Mutex mu;
  absl::flat_hash_map<std::string, std::pair<TaskFn, BatchFn>> by_name ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<const void*, const std::string*> by_key ABSL_GUARDED_BY(mu);
};
Registry& GetRegistry() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

const std::string* RegisterTask(std::string name, const void* key, TaskFn fn, BatchFn batch) {
  Registry& r = GetRegistry();
  MutexLock lock(&r.mu);
  if (auto it = r.by_key.find(key); it != r.by_key.end()) return it->second;
  std::string unique = name;
  for (int n = 2; r.by_name.contains(unique); ++n) unique = absl::StrCat(name, "#", n);
  auto [it, inserted] = r.by_name.emplace(unique, std::make_pair(fn, batch));
  const std::string* stored = new std::string(it->first);
  r.by_key.emplace(key, stored);
  return stored;
}

TaskFn FindTask(absl::string_view name) {
  Registry& r = GetRegistry();
  MutexLock lock(&r.mu);
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : it->second.first;
}

BatchFn FindBatch(absl::string_view name) {
  Registry& r = GetRegistry();
  MutexLock lock(&r.mu);
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : it->second.second;
}

void AppendError(std::string& out, const absl::Status& status) {
  const absl::Status failure = AsFailure(status);
  const size_t at = out.size();
  out.resize(at + 1 + Codec<absl::Status>::Size(failure));
  ByteWriter w(reinterpret_cast<uint8_t*>(out.data()) + at, out.size() - at);
  w.WriteByte(1);
  Codec<absl::Status>::Encode(failure, w);
}

absl::Status CurrentExceptionStatus(absl::string_view function) {
  return absl::UnknownError(
      absl::StrCat("Pool: ", function, " threw ", CurrentExceptionDescription()));
}

}  // namespace pool_internal
}  // namespace mp
