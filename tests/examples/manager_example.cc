// Python's docs, "Sharing state between processes" -> "Server process", in mp: a manager's server
// process holds a dict and a list, and a child changes them through proxies.
//
//   from multiprocessing import Process, Manager
//   def f(d, l):
//       d[1] = '1'
//       d['2'] = 2
//       d[0.25] = None
//       l.reverse()
//   if __name__ == '__main__':
//       with Manager() as manager:
//           d = manager.dict()
//           l = manager.list(range(10))
//           p = Process(target=f, args=(d, l))
//           p.start()
//           p.join()
//           print(d)      # prints "{1: '1', '2': 2, 0.25: None}"
//           print(l)      # prints "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]"
//
// Proxies are typed in C++: the dict's keys are strings and its values optional strings (None is
// nullopt). It runs with the default context, then once with each start method: a proxy is a
// network-domain object, so it goes to a fork, spawn or forkserver child alike.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mp.h"

using Dict = mp::DictProxy<std::string, std::optional<std::string>>;
using List = mp::ListProxy<int64_t>;

// At namespace scope: every start method runs it.
absl::Status F(Dict d, List l) {
  if (absl::Status s = d.Set("1", "1"); !s.ok()) return s;
  if (absl::Status s = d.Set("2", "2"); !s.ok()) return s;
  if (absl::Status s = d.Set("0.25", std::nullopt); !s.ok()) return s;
  return l.Reverse();
}

std::string Repr(const std::vector<std::pair<std::string, std::optional<std::string>>>& items) {
  std::string out = "{";
  for (const auto& [k, v] : items) {
    if (out.size() > 1) out += ", ";
    out += "'" + k + "': " + (v.has_value() ? "'" + *v + "'" : "None");
  }
  return out + "}";
}

std::string Repr(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (int64_t v : values) {
    if (out.size() > 1) out += ", ";
    out += std::to_string(v);
  }
  return out + "]";
}

// The docs' program with `ctx`; OK when d and l end as the docs print them.
absl::Status Run(const std::string& label, mp::Context* ctx) {
  absl::StatusOr<mp::Manager> manager = ctx->Manager();  // with Manager() as manager:
  if (!manager.ok()) return manager.status();
  absl::StatusOr<Dict> d = manager->Dict<std::string, std::optional<std::string>>();
  if (!d.ok()) return d.status();
  const std::vector<int64_t> ten = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};  // range(10)
  absl::StatusOr<List> l = manager->List<int64_t>(ten);
  if (!l.ok()) return l.status();
  absl::StatusOr<mp::Process> p = ctx->Process<&F>(*d, *l);
  if (!p.ok()) return p.status();
  if (absl::Status s = p->Start(); !s.ok()) return s;
  if (absl::Status s = p->Join(); !s.ok()) return s;
  if (p->ExitCode() != 0) {
    return absl::InternalError(absl::StrCat("the child exited with ", p->ExitCode().value_or(-1)));
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::optional<std::string>>>> items =
      d->Items();
  if (!items.ok()) return items.status();
  absl::StatusOr<std::vector<int64_t>> values = l->ToVector();
  if (!values.ok()) return values.status();
  std::printf("%s:\n  %s\n  %s\n", label.c_str(), Repr(*items).c_str(), Repr(*values).c_str());
  const std::vector<std::pair<std::string, std::optional<std::string>>> want_d = {
      {"1", "1"}, {"2", "2"}, {"0.25", std::nullopt}};
  const std::vector<int64_t> want_l = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  if (*items != want_d || *values != want_l) {
    return absl::DataLossError(absl::StrCat("want ", Repr(want_d), " and ", Repr(want_l)));
  }
  return manager->Shutdown();  // leaving the `with` block
}

int main(int argc, char** argv) {
  mp::Init(argc, argv);
  // The default start method, then each one by name.
  std::vector<std::pair<std::string, mp::Context*>> contexts = {
      {absl::StrCat("default (", mp::GetContext()->method(), ")"), mp::GetContext()}};
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    absl::StatusOr<mp::Context*> ctx = mp::GetContext(method);
    if (!ctx.ok()) {
      std::fprintf(stderr, "%s\n", ctx.status().ToString().c_str());
      return 1;
    }
    contexts.emplace_back(method, *ctx);
  }
  int failures = 0;
  for (const auto& [label, ctx] : contexts) {
    if (absl::Status s = Run(label, ctx); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", label.c_str(), s.ToString().c_str());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}
