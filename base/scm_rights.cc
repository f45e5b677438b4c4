// Copyright 2026 The mp Authors.

#include "base/scm_rights.h"

#include <cstring>

namespace mp {

void AttachRights(struct msghdr& msg, RightsBuffer& buffer, absl::Span<const int> fds) {
  if (fds.empty()) {
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    return;
  }
  const size_t bytes = sizeof(int) * fds.size();
  msg.msg_control = buffer.data;
  msg.msg_controllen = CMSG_SPACE(bytes);
  std::memset(buffer.data, 0, msg.msg_controllen);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(bytes);
  std::memcpy(CMSG_DATA(c), fds.data(), bytes);
}

void CollectRights(const struct msghdr& msg, std::vector<int>* out) {
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<struct msghdr*>(&msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
      out->push_back(fd);
    }
  }
}

}  // namespace mp
