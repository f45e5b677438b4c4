// Copyright 2026 The mp Authors.
//
// managers/token.h — mp::Token: which object of which manager's server a proxy refers to; what a
// proxy's Codec carries (managers/proxy.h).

#ifndef MP_MANAGERS_TOKEN_H_
#define MP_MANAGERS_TOKEN_H_

#include <cstdint>
#include <optional>
#include <string>

#include "serialize/codec.h"

namespace mp {

struct Token {
  std::string address;                 // the server's Listener address
  std::optional<std::string> authkey;  // its authkey (nullopt: none)
  uint64_t id = 0;                     // the object's id in that server (0: an empty proxy)
  uint64_t type = 0;                   // fingerprint of the object's type (managers/wire.h)
  std::string type_name;               // for messages: "mp::DictProxy<str,i64>"
};
MP_FIELDS(Token, address, authkey, id, type, type_name);

}  // namespace mp

#endif  // MP_MANAGERS_TOKEN_H_
