// Copyright 2026 The mp Authors.

#include "base/host_addresses.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>

namespace mp {

std::vector<uint32_t> HostIPv4Addresses(bool loopback_first, size_t max) {
  std::vector<uint32_t> out;
  if (loopback_first && max > 0) out.push_back(htonl(INADDR_LOOPBACK));
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr && out.size() < max; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    const uint32_t ip = reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr;
    if (ntohl(ip) >> 24 == 127) continue;
    if (std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
  }
  freeifaddrs(list);
  return out;
}

std::string FormatIPv4(uint32_t ip) {
  char text[INET_ADDRSTRLEN] = {};
  in_addr addr{};
  addr.s_addr = ip;
  inet_ntop(AF_INET, &addr, text, sizeof(text));
  return text;
}

}  // namespace mp
