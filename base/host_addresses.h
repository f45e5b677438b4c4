// Copyright 2026 The mp Authors.
//
// base/host_addresses.h — this host's IPv4 addresses, for what other hosts must reach (the mpi
// context's bridges and its Manager).

#ifndef MP_BASE_HOST_ADDRESSES_H_
#define MP_BASE_HOST_ADDRESSES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mp {

// This host's IPv4 addresses in network byte order, loopback (127.0.0.0/8) left out, at most
// `max` (getifaddrs order, no duplicates); with `loopback_first`, 127.0.0.1 comes first.
std::vector<uint32_t> HostIPv4Addresses(bool loopback_first, size_t max = 64);

// `ip` (network byte order) as dotted decimal.
std::string FormatIPv4(uint32_t ip);

}  // namespace mp

#endif  // MP_BASE_HOST_ADDRESSES_H_
