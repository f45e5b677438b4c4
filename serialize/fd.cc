// Copyright 2026 The mp Authors.

#include "serialize/fd.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mp {
namespace {
thread_local FdTable* current_table = nullptr;
}  // namespace

FdTable::FdTable(std::vector<int> received)
    : fds_(std::move(received)), owned_(fds_.size(), true) {}

FdTable::FdTable(FdTable&& other) noexcept
    : fds_(std::move(other.fds_)),
      fork_only_(std::move(other.fork_only_)),
      owned_(std::move(other.owned_)) {
  other.fds_.clear();
  other.owned_.clear();
  other.fork_only_.clear();
}

FdTable& FdTable::operator=(FdTable&& other) noexcept {
  if (this != &other) {
    this->~FdTable();
    new (this) FdTable(std::move(other));
  }
  return *this;
}

FdTable::~FdTable() {
  for (size_t i = 0; i < owned_.size(); ++i) {
    if (owned_[i] && fds_[i] >= 0) ::close(fds_[i]);
  }
}

size_t FdTable::Add(int fd) {
  auto it = std::find(fds_.begin(), fds_.end(), fd);
  if (it != fds_.end()) return static_cast<size_t>(it - fds_.begin());
  fds_.push_back(fd);
  owned_.push_back(false);
  return fds_.size() - 1;
}

absl::StatusOr<int> FdTable::Take(size_t index) {
  if (index >= fds_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("mp: message refers to file descriptor #", index,
                                                   " but only ", fds_.size(), " arrived with it"));
  }
  owned_[index] = false;
  return fds_[index];
}

ScopedFdTable::ScopedFdTable(FdTable* table) : previous_(current_table) { current_table = table; }
ScopedFdTable::~ScopedFdTable() { current_table = previous_; }
FdTable* ScopedFdTable::Current() { return current_table; }

void Codec<PassedFd>::Encode(const PassedFd& v, ByteWriter& w) {
  FdTable* t = current_table;
  if (t == nullptr || v.fd < 0) {
    w.WriteLE(uint32_t{0});
    return;
  }
  w.WriteLE(static_cast<uint32_t>(t->Add(v.fd) + 1));
}

absl::Status Codec<PassedFd>::Decode(ByteReader& r, PassedFd& out) {
  uint32_t slot = 0;
  if (absl::Status s = r.ReadLE(&slot, "file descriptor slot"); !s.ok()) return s;
  if (slot == 0) {
    return absl::FailedPreconditionError(
        "mp: a file descriptor was encoded where descriptors cannot travel (no FdTable was current "
        "when it was sent)");
  }
  FdTable* t = current_table;
  if (t == nullptr) {
    return absl::FailedPreconditionError(
        "mp: message carries a file descriptor but the receiver decoded it without an FdTable");
  }
  absl::StatusOr<int> fd = t->Take(slot - 1);
  if (!fd.ok()) return fd.status();
  out.fd = *fd;
  return absl::OkStatus();
}

}  // namespace mp
