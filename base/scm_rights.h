// Copyright 2026 The mp Authors.
//
// base/scm_rights.h — descriptors as SCM_RIGHTS ancillary data on a Unix socket: building the
// control message for sendmsg(2) and collecting what recvmsg(2) delivered. The one place mp spells
// the CMSG_* steps (Connection's socket and shared-memory transports, the start methods' launch
// channel use it).
//
//   mp::RightsBuffer control;
//   msghdr msg = {};  // iov set by the caller
//   mp::AttachRights(msg, control, fds);
//   sendmsg(fd, &msg, MSG_NOSIGNAL);
//   ...
//   msg.msg_control = control.data; msg.msg_controllen = sizeof(control.data);
//   recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
//   std::vector<int> got; mp::CollectRights(msg, &got);  // the caller owns (and closes) them

#ifndef MP_BASE_SCM_RIGHTS_H_
#define MP_BASE_SCM_RIGHTS_H_

#include <sys/socket.h>

#include <cstddef>
#include <vector>

#include "absl/types/span.h"

namespace mp {

// Most descriptors one sendmsg carries (Linux's SCM_MAX_FD).
inline constexpr size_t kMaxRightsFds = 253;

// Room for one control message of up to kMaxRightsFds descriptors, aligned for cmsghdr.
struct RightsBuffer {
  alignas(struct cmsghdr) char data[CMSG_SPACE(sizeof(int) * kMaxRightsFds)];
};

// Points msg's control at `buffer` holding one SCM_RIGHTS message with `fds` (at most
// kMaxRightsFds; the caller checks). No descriptors: no control message.
void AttachRights(struct msghdr& msg, RightsBuffer& buffer, absl::Span<const int> fds);

// Appends every descriptor the SCM_RIGHTS messages of a received `msg` carry to *out, in order.
void CollectRights(const struct msghdr& msg, std::vector<int>* out);

}  // namespace mp

#endif  // MP_BASE_SCM_RIGHTS_H_
