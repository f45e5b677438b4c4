// Copyright 2026 The mp Authors.

#include "managers/served_object.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace mp::managers_internal {

absl::Status TypeTable::Add(std::string type_id, Factory factory) {
  if (type_id.empty()) return absl::InvalidArgumentError("a manager typeid must not be empty");
  if (!factories_.emplace(type_id, std::move(factory)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("the typeid '", type_id, "' is registered twice with this manager"));
  }
  return absl::OkStatus();
}

const Factory* TypeTable::Find(absl::string_view type_id) const {
  auto it = factories_.find(type_id);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> TypeTable::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

}  // namespace mp::managers_internal
