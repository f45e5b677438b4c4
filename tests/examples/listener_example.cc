// Python's docs, "Listeners and Clients", in mp: a server sends to a client over an authenticated
// connection.
//
//   from multiprocessing.connection import Listener, Client
//   with Listener(('localhost', 6000), authkey=b'secret password') as listener:
//       with listener.accept() as conn:
//           conn.send([2.25, None, 'junk', float])
//   ...
//   with Client(('localhost', 6000), authkey=b'secret password') as conn:
//       print(conn.recv())

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "mp.h"

// The client, in a child process: connects, receives one message, checks it.
absl::Status RunClient(std::string address) {
  absl::StatusOr<mp::Connection> conn = mp::Client(address, "secret password");
  if (!conn.ok()) return conn.status();
  absl::StatusOr<std::vector<double>> got = conn->Recv<std::vector<double>>();
  if (!got.ok()) return got.status();
  std::printf("client got [%.2f, %.2f]\n", (*got)[0], (*got)[1]);
  return (*got == std::vector<double>{2.25, 8.5}) ? absl::OkStatus()
                                                  : absl::DataLossError("wrong message");
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  // Port 0: the kernel picks a free port on loopback; address() says which.
  absl::StatusOr<mp::Listener> listener =
      mp::Listener::Create({.address = "localhost:0", .authkey = "secret password"});
  if (!listener.ok()) return 1;
  absl::StatusOr<mp::Process> client = mp::GetContext()->Process<&RunClient>(listener->address());
  if (!client.ok() || !client->Start().ok()) return 1;
  absl::StatusOr<mp::Connection> conn = listener->Accept(absl::Seconds(60));
  if (!conn.ok()) {
    std::fprintf(stderr, "%s\n", conn.status().ToString().c_str());
    return 1;
  }
  if (!conn->Send(std::vector<double>{2.25, 8.5}).ok()) return 1;
  // A client with the wrong key is refused, and the listener stays usable.
  std::printf("listening on %s\n", listener->address().c_str());
  if (!client->Join().ok() || client->ExitCode() != 0) return 1;
  absl::Status client_side;
  std::thread intruder(
      [&] { client_side = mp::Client(listener->address(), "wrong key").status(); });
  absl::StatusOr<mp::Connection> refused = listener->Accept(absl::Seconds(60));
  intruder.join();
  std::printf("wrong key, server side: %s\nwrong key, client side: %s\n",
              refused.status().ToString().c_str(), client_side.ToString().c_str());
  return (!refused.ok() && !client_side.ok()) ? 0 : 1;
}
