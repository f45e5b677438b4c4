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

absl::Status ReadResult(ByteReader& r, absl::Status* outcome, absl::Span<const uint8_t>* payload) {
  absl::StatusOr<uint8_t> tag = r.ReadByte("result tag");
  if (!tag.ok()) return tag.status();
  if (*tag == 0) {
    absl::StatusOr<uint64_t> n = r.ReadVarint("result");
    if (!n.ok()) return n.status();
    absl::StatusOr<absl::Span<const uint8_t>> span = r.ReadSpan(*n, "result");
    if (!span.ok()) return span.status();
    *outcome = absl::OkStatus();
    *payload = *span;
    return absl::OkStatus();
  }
  if (*tag != 1) {
    return absl::InvalidArgumentError(absl::StrCat("result tag ", *tag, " (0 or 1 expected)"));
  }
  absl::Status failure;
  if (absl::Status s = Codec<absl::Status>::Decode(r, failure); !s.ok()) return s;
  *outcome = AsFailure(std::move(failure));
  return absl::OkStatus();
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
