// Copyright 2026 The mp Authors.
//
// The server side of a SharedMemoryManager: the "SharedMemoryTracker" built-in makes named
// SharedMemory segments in the server process and unlinks them when it dies (its last proxy, the
// SharedMemoryManager, is gone) or the server ends. The server creates them tracked
// (shared_memory.h's registry), so even a server killed by SIGKILL has them reclaimed by the next
// SharedMemory::Create on the machine. Methods:
//   create(i64 size)->str name   release(str name)   list->str...

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "managers/builtins.h"
#include "managers/served_object.h"
#include "serialize/codec.h"
#include "shared_memory/shared_memory.h"

namespace mp::managers_internal {
namespace {

class SharedMemoryTracker : public ServedObject {
 public:
  SharedMemoryTracker(uint64_t type, std::string type_name)
      : type_(type), type_name_(std::move(type_name)) {}
  ~SharedMemoryTracker() override { ServerEnding(); }

  uint64_t type() const override { return type_; }
  const std::string& type_name() const override { return type_name_; }

  void ServerEnding() override {
    MutexLock lock(&mu_);
    for (auto& [name, shm] : segments_) shm.Unlink().IgnoreError();
    segments_.clear();
  }

  absl::Status Call(CallContext&, absl::string_view m, uint64_t, absl::Span<const std::string> a,
                    std::vector<std::string>& out) override {
    MutexLock lock(&mu_);
    if (m == "create") {
      if (absl::Status s = CheckArgCount(type_name_, m, a, 1); !s.ok()) return s;
      absl::StatusOr<int64_t> size = DecodeI64(type_name_, m, a[0]);
      if (!size.ok()) return size.status();
      absl::StatusOr<SharedMemory> shm = SharedMemory::Create("", *size);
      if (!shm.ok()) return shm.status();
      out.push_back(Encode(shm->name()));
      // The server keeps no mapping: the clients map it; the name is what it must unlink.
      std::string name = shm->name();
      shm->Close();
      segments_.emplace(std::move(name), *std::move(shm));
      return absl::OkStatus();
    }
    if (m == "release") {
      if (absl::Status s = CheckArgCount(type_name_, m, a, 1); !s.ok()) return s;
      absl::StatusOr<std::string> name = Decode<std::string>(a[0]);
      if (!name.ok()) return absl::InvalidArgumentError("SharedMemoryTracker.release: a bad name");
      auto it = segments_.find(*name);
      if (it == segments_.end()) {
        return absl::NotFoundError(
            absl::StrCat("SharedMemoryTracker.release: this manager made no segment ", *name));
      }
      absl::Status s = it->second.Unlink();
      segments_.erase(it);
      return s;
    }
    if (m == "list") {
      if (absl::Status s = CheckArgCount(type_name_, m, a, 0); !s.ok()) return s;
      for (const auto& [name, shm] : segments_) out.push_back(Encode(name));
      return absl::OkStatus();
    }
    return NoSuchMethod(type_name_, m);
  }

 private:
  const uint64_t type_;
  const std::string type_name_;
  Mutex mu_;
  absl::flat_hash_map<std::string, SharedMemory> segments_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status AddSharedMemoryTracker(TypeTable& table) {
  return table.Add(
      "SharedMemoryTracker",
      [](uint64_t type, absl::string_view name,
         absl::Span<const std::string> args) -> absl::StatusOr<std::shared_ptr<ServedObject>> {
        if (absl::Status s = CheckArgCount(name, "create", args, 0); !s.ok()) {
          return s;
        }
        return std::make_shared<SharedMemoryTracker>(type, std::string(name));
      });
}

}  // namespace mp::managers_internal
