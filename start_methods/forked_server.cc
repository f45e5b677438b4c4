// Copyright 2026 The mp Authors.

#include "start_methods/forked_server.h"

#include <pthread.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "base/random.h"

namespace mp {
namespace process_internal {

// ForkServer's friend: the only way to make a ForkServer whose servers are forked from here.
class ForkedServerFactory {
 public:
  static absl::StatusOr<std::shared_ptr<ForkServer>> Make(ForkServerOptions options) {
    std::shared_ptr<ForkServer> server(new ForkServer(options, /*forked_here=*/true));
    if (absl::Status s = server->ForkServerFromHere(); !s.ok()) return s;
    return server;
  }
};

absl::StatusOr<std::shared_ptr<ForkServer>> ForkedServerStartMethod(ForkServerOptions options) {
  return ForkedServerFactory::Make(options);
}

namespace {

struct Pin {
  std::shared_ptr<const void> object;
  std::string kind;
};

// The pins, locked around every fork (pthread_atfork) so that a forked process finds the table
// consistent and unlocked.
struct Pins {
  std::mutex mu;
  std::map<uint64_t, Pin> by_key;
};
Pins& AllPins() {
  static Pins* const pins = new Pins;
  return *pins;
}

const bool pins_atfork_registered = [] {
  pthread_atfork([] { AllPins().mu.lock(); }, [] { AllPins().mu.unlock(); },
                 [] { AllPins().mu.unlock(); });
  return true;
}();

}  // namespace

absl::StatusOr<uint64_t> PinForForkChildren(std::shared_ptr<const void> object, std::string kind) {
  Pins& pins = AllPins();
  for (;;) {
    uint64_t key = 0;
    if (absl::Status s =
            RandomBytes(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&key), sizeof(key)));
        !s.ok()) {
      return s;
    }
    std::lock_guard<std::mutex> lock(pins.mu);
    if (key == 0 || pins.by_key.contains(key)) continue;
    pins.by_key.emplace(key, Pin{std::move(object), std::move(kind)});
    return key;
  }
}

void Unpin(uint64_t key) {
  std::shared_ptr<const void> released;  // destroyed after the lock is released
  Pins& pins = AllPins();
  std::lock_guard<std::mutex> lock(pins.mu);
  auto it = pins.by_key.find(key);
  if (it == pins.by_key.end()) return;
  released = std::move(it->second.object);
  pins.by_key.erase(it);
}

absl::StatusOr<std::shared_ptr<const void>> FindPinned(uint64_t key, absl::string_view kind) {
  Pins& pins = AllPins();
  std::lock_guard<std::mutex> lock(pins.mu);
  auto it = pins.by_key.find(key);
  if (it == pins.by_key.end()) {
    return absl::NotFoundError(
        absl::StrCat("mp: no ", kind, " pinned under key ", key, " in process ", getpid(),
                     " (it was pinned after this process was forked from its owner, or never)"));
  }
  if (it->second.kind != kind) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp: key ", key, " pins a ", it->second.kind, ", not a ", kind));
  }
  return it->second.object;
}

}  // namespace process_internal
}  // namespace mp
