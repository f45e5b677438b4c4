// A consumer's program: depends on @mp//:mp and includes the umbrella header.
#include <cstdio>
#include <string>
#include <vector>

#include "mp.h"

namespace app {
struct Point {
  double x = 0;
  double y = 0;
};
MP_FIELDS(Point, x, y);
}  // namespace app

int main() {
  std::vector<app::Point> path = {{0, 0}, {1.5, 2.5}};
  absl::StatusOr<std::string> frame = mp::EncodeFrame(path);
  if (!frame.ok()) {
    std::fprintf(stderr, "encode: %s\n", frame.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::vector<app::Point>> back = mp::DecodeFrame<std::vector<app::Point>>(*frame);
  if (!back.ok() || back->size() != 2 || (*back)[1].y != 2.5) {
    std::fprintf(stderr, "decode: %s\n", back.status().ToString().c_str());
    return 1;
  }
  std::printf("consumer: @mp//:mp works as a dependency (%zu-byte frame of %s)\n", frame->size(),
              mp::TypeName<std::vector<app::Point>>().c_str());
  return 0;
}
