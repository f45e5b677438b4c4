// Copyright 2026 The mp Authors.
//
// channels/test_transports.h — the two transports of mp::Pipe as test parameters (testonly), for
// value-parameterized tests that run the same Connection contract once per transport:
//
//   class MyTest : public ::testing::TestWithParam<mp::ConnectionTransport> {};
//   INSTANTIATE_TEST_SUITE_P(Transports, MyTest, mp::testing::AllTransports(),
//                            mp::testing::TransportParamName());
//   TEST_P(MyTest, X) { auto [a, b] = mp::testing::PipeOf(GetParam()); ... }
//
// The instances are named "Socket" and "SharedMemory". Tests whose subject is the socket wire
// format itself (raw bytes written into fd(), raw-socket peers, FromFd and Release of a socket)
// call Pipe(duplex, ConnectionTransport::kSocket) instead and say so.

#ifndef MP_CHANNELS_TEST_TRANSPORTS_H_
#define MP_CHANNELS_TEST_TRANSPORTS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "channels/connection.h"
#include "gtest/gtest.h"

namespace mp::testing {

inline constexpr ConnectionTransport kAllTransports[] = {ConnectionTransport::kSocket,
                                                         ConnectionTransport::kSharedMemory};

// "Socket" or "SharedMemory".
inline std::string TransportName(ConnectionTransport transport) {
  return transport == ConnectionTransport::kSocket ? "Socket" : "SharedMemory";
}

// The parameter generator of INSTANTIATE_TEST_SUITE_P: both transports.
inline auto AllTransports() { return ::testing::ValuesIn(kAllTransports); }

// The name generator of INSTANTIATE_TEST_SUITE_P for a ConnectionTransport parameter.
struct TransportParamName {
  std::string operator()(const ::testing::TestParamInfo<ConnectionTransport>& info) const {
    return TransportName(info.param);
  }
};

// Pipe(duplex, transport), with a non-fatal failure (and two closed Connections) if it fails.
inline std::pair<Connection, Connection> PipeOf(ConnectionTransport transport, bool duplex = true) {
  absl::StatusOr<std::pair<Connection, Connection>> p = Pipe(duplex, transport);
  EXPECT_TRUE(p.ok()) << TransportName(transport) << ": " << p.status();
  if (!p.ok()) return {};
  EXPECT_EQ(p->first.transport(), transport);
  return *std::move(p);
}

}  // namespace mp::testing

namespace mp {
// So that gtest prints a transport parameter by name, not as "4-byte object <01-00 00-00>".
inline void PrintTo(ConnectionTransport transport, std::ostream* os) {
  *os << ::mp::testing::TransportName(transport);
}
}  // namespace mp

#endif  // MP_CHANNELS_TEST_TRANSPORTS_H_
