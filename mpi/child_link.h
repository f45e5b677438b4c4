// Copyright 2026 The mp Authors.
//
// mpi/child_link.h — what an mpi child's handle (start_method.h) offers the mpi transports beside
// Process (internal to mp): the intercommunicator to the child, on which the start method itself
// uses only the tags of the launch (runtime.h's kTagChildHello .. kTagHeartbeat), so a transport
// may use its own tags on it.

#ifndef MP_MPI_CHILD_LINK_H_
#define MP_MPI_CHILD_LINK_H_

#include <mpi.h>

#include <string>

namespace mp::mpi_internal {

// Implemented by the ChildHandle of every mpi child (a dynamic_cast from the handle finds it).
class ChildLink {
 public:
  // The parent's side of the child's intercommunicator (the child is its remote rank 0); valid
  // while the handle exists.
  virtual MPI_Comm communicator() const = 0;
  // The host the child runs on, as it named itself, and whether that is this host.
  virtual const std::string& host() const = 0;
  virtual bool on_this_host() const = 0;
  // A pidfd of a child on this host (readable once its process is gone, before the handle's
  // sentinel, which waits for the exit code too); -1 for a child on another host.
  virtual int pidfd() const = 0;

 protected:
  ~ChildLink() = default;
};

}  // namespace mp::mpi_internal

#endif  // MP_MPI_CHILD_LINK_H_
