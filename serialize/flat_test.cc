// Copyright 2026 The mp Authors.

#include "serialize/flat.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serialize/frame.h"
#include "serialize/sample_generated.h"

namespace mp {
namespace {

using sample::Sample;
using ::testing::HasSubstr;

void BuildSample(flatbuffers::FlatBufferBuilder& fbb, uint64_t id) {
  std::vector<double> values = {1.0, 2.5, -3.0};
  std::vector<flatbuffers::Offset<sample::Tag>> tags = {sample::CreateTagDirect(fbb, "host", "a"),
                                                        sample::CreateTagDirect(fbb, "pid", "42")};
  fbb.Finish(sample::CreateSampleDirect(fbb, id, "sensor", sample::Level_Warning, &values, &tags));
}

TEST(Flat, TakeAndRead) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildSample(fbb, 7);
  FlatBuffer<Sample> f = FlatBuffer<Sample>::Take(fbb);
  EXPECT_EQ(f->id(), 7u);
  EXPECT_EQ(f->source()->str(), "sensor");
  EXPECT_EQ(f->values()->size(), 3u);
}

TEST(Flat, CodecRoundTripVerifies) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildSample(fbb, 9);
  FlatBuffer<Sample> f = FlatBuffer<Sample>::Take(fbb);
  absl::StatusOr<std::string> frame = EncodeFrame(f);
  ASSERT_TRUE(frame.ok());
  absl::StatusOr<FlatBuffer<Sample>> back = DecodeFrame<FlatBuffer<Sample>>(*frame);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->id(), 9u);
  EXPECT_EQ((*back)->tags()->Get(1)->value()->str(), "42");
  EXPECT_EQ(TypeName<FlatBuffer<Sample>>(), "fb<mp.sample.Sample>");
}

TEST(Flat, ZeroCopyViewWhenAligned) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildSample(fbb, 11);
  absl::StatusOr<std::string> frame = EncodeFlatFrame<Sample>(fbb);
  ASSERT_TRUE(frame.ok());
  // Copy into 8-aligned storage, as a receive buffer would be.
  std::vector<uint64_t> storage((frame->size() + 7) / 8);
  std::memcpy(storage.data(), frame->data(), frame->size());
  absl::Span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(storage.data()), frame->size());
  absl::StatusOr<FlatView<Sample>> view = FlatView<Sample>::Parse(bytes);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_TRUE(view->zero_copy());
  EXPECT_EQ((*view)->id(), 11u);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(view->get()) > bytes.data(), true);
  EXPECT_LT(reinterpret_cast<const uint8_t*>(view->get()), bytes.data() + bytes.size());
}

TEST(Flat, MisalignedFrameIsCopiedNotRefused) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildSample(fbb, 12);
  absl::StatusOr<std::string> frame = EncodeFlatFrame<Sample>(fbb);
  ASSERT_TRUE(frame.ok());
  std::vector<uint64_t> storage((frame->size() + 16) / 8);
  auto* base = reinterpret_cast<uint8_t*>(storage.data()) + 1;
  std::memcpy(base, frame->data(), frame->size());
  absl::StatusOr<FlatView<Sample>> view =
      FlatView<Sample>::Parse(absl::Span<const uint8_t>(base, frame->size()));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->zero_copy());
  EXPECT_EQ((*view)->id(), 12u);
}

TEST(Flat, CorruptBufferIsRefusedByTheVerifier) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildSample(fbb, 13);
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  // Point the root offset far outside the buffer.
  bytes[0] = 0xff;
  bytes[1] = 0xff;
  absl::StatusOr<FlatBuffer<Sample>> f = FlatBuffer<Sample>::Copy(bytes);
  ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("not a valid FlatBuffer of mp.sample.Sample"));
  EXPECT_FALSE(FlatBuffer<Sample>::Copy({}).ok());
}

TEST(Flat, FlatFrameAndCodecFrameDoNotMix) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildSample(fbb, 14);
  absl::StatusOr<std::string> frame = EncodeFlatFrame<Sample>(fbb);
  ASSERT_TRUE(frame.ok());
  absl::StatusOr<FlatBuffer<Sample>> wrong = DecodeFrame<FlatBuffer<Sample>>(*frame);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("flatframe<mp.sample.Sample>"));
}

TEST(Flat, DepthLimitApplies) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildSample(fbb, 15);
  FlatVerifyLimits tight;
  tight.max_tables = 1;  // the root and two Tag tables
  absl::StatusOr<const Sample*> root = VerifyFlatBuffer<Sample>(
      absl::Span<const uint8_t>(fbb.GetBufferPointer(), fbb.GetSize()), tight);
  EXPECT_FALSE(root.ok());
}

}  // namespace
}  // namespace mp
