// Copyright 2026 The mp Authors.
//
// bazel run //tools/demo — the main job of mp, as far as it exists: typed messages that cross a
// process boundary intact, or fail with a status that says why.

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "mp.h"
#include "serialize/sample_generated.h"

namespace demo {
struct Job {
  int64_t id = 0;
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, double> limits;
};
MP_FIELDS(Job, id, command, args, limits);
}  // namespace demo

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  std::printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
  if (!ok) ++failures;
}

}  // namespace

int main() {
  std::printf("mp demo: typed messages (serialize/)\n\n");

  demo::Job job{7, "render", {"--fast", "scene.bin"}, {{"cpu", 1.5}, {"mem_gib", 2}}};
  absl::StatusOr<std::string> frame = mp::EncodeFrame(job);
  Check(frame.ok(), "encode a user struct (MP_FIELDS) into a frame");
  std::printf("        type %s, %zu bytes on the wire\n", mp::TypeName<demo::Job>().c_str(),
              frame->size());

  absl::StatusOr<demo::Job> back = mp::DecodeFrame<demo::Job>(*frame);
  Check(back.ok() && back->command == "render" && back->args.size() == 2 &&
            back->limits.at("cpu") == 1.5,
        "decode it back intact");

  absl::StatusOr<std::string> wrong = mp::DecodeFrame<std::string>(*frame);
  Check(wrong.status().code() == absl::StatusCode::kInvalidArgument,
        "asking for the wrong type is a clear error:");
  std::printf("        %s\n", wrong.status().ToString().c_str());

  std::string torn = frame->substr(0, frame->size() - 3);
  absl::StatusOr<demo::Job> truncated = mp::DecodeFrame<demo::Job>(torn);
  Check(!truncated.ok(), "a truncated message is refused, never read past:");
  std::printf("        %s\n", truncated.status().ToString().c_str());

  flatbuffers::FlatBufferBuilder fbb;
  std::vector<double> values = {0.5, 1.5};
  fbb.Finish(mp::sample::CreateSampleDirect(fbb, 99, "sensor", mp::sample::Level_Warning, &values));
  absl::StatusOr<std::string> flat = mp::EncodeFlatFrame<mp::sample::Sample>(fbb);
  absl::StatusOr<mp::FlatView<mp::sample::Sample>> view =
      mp::FlatView<mp::sample::Sample>::Parse(mp::AsBytes(*flat));
  Check(view.ok() && (*view)->id() == 99 && (*view)->values()->size() == 2,
        "a FlatBuffers record arrives as a verified view");

  std::printf("\n%s\n", failures == 0 ? "demo: all steps held" : "demo: SOME STEPS FAILED");
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
