// Copyright 2026 The mp Authors.
//
// testing/open_fds.h — how many descriptors this process holds (the entries of /proc/self/fd, less
// the one that reads it), to check that a call leaks none and keeps none it was not given.
//
//   const int before = mp::testing::CountOpenFds();
//   ...
//   EXPECT_EQ(mp::testing::CountOpenFds(), before);

#ifndef MP_TESTING_OPEN_FDS_H_
#define MP_TESTING_OPEN_FDS_H_

#include <dirent.h>

namespace mp::testing {

// -1 if /proc/self/fd cannot be read (e.g. no descriptor is left to open it).
inline int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n - 1;
}

}  // namespace mp::testing

#endif  // MP_TESTING_OPEN_FDS_H_
