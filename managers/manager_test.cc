// Copyright 2026 The mp Authors.
//
// Manager and its built-in collections under every start method: each proxy method and its
// errors, proxies passed to children, reference counting (copies, children, a client that dies
// holding references), the server's death, remote (TCP) use, and registered classes.

#include "managers/manager.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "managers/collections.h"
#include "managers/registry.h"
#include "managers/test_util.h"
#include "start_methods/process.h"
#include "start_methods/test_methods.h"
#include "start_methods/test_util.h"

namespace manager_test {

using ::absl::StatusCode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// ---- A registered class ----

class Counter {
 public:
  Counter() = default;
  explicit Counter(int64_t start) : n_(start) {}
  int64_t Add(int64_t d) { return n_ += d; }
  int64_t Get() const { return n_; }
  absl::Status Reset(int64_t to) {
    if (to < 0) return absl::InvalidArgumentError("negative reset");
    n_ = to;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Describe(std::string prefix) const {
    return absl::StrCat(prefix, n_);
  }
  void Throw() { throw std::runtime_error("counter broke"); }
  Counter Fork() const { return Counter(n_ * 2); }

 private:
  int64_t n_ = 0;
};

Counter MakeCounter(int64_t start) { return Counter(start); }

// One object every Create<Tally>() shares (CPython's register('t', callable=lambda: tally)). It
// has no locking of its own: the calls of all its proxies go through one mutex.
class Tally {
 public:
  int64_t Add(int64_t d) { return n_ += d; }

 private:
  int64_t n_ = 0;
};
std::shared_ptr<Tally> TheTally() {
  static const std::shared_ptr<Tally>* const tally =
      new std::shared_ptr<Tally>(std::make_shared<Tally>());
  return *tally;
}

void CounterTypes(mp::TypeRegistry& r) {
  r.Register<Tally>("Tally", &TheTally).Expose<&Tally::Add>("add");
  r.Register<Counter>("Counter", &MakeCounter)
      .Expose<&Counter::Add>("add")
      .Expose<&Counter::Get>("get")
      .Expose<&Counter::Reset>("reset")
      .Expose<&Counter::Describe>("describe")
      .Expose<&Counter::Throw>("throw")
      .ExposeProxy<&Counter::Fork>("fork");
}

// ---- An initializer (CPython's manager.start(initializer, initargs)) ----

// Set only by the initializer, in the server process; read through Greeting.
std::string* g_greeting = nullptr;

class Greeting {
 public:
  std::string Get() const { return g_greeting == nullptr ? "(no initializer ran)" : *g_greeting; }
};

Greeting MakeGreeting() { return Greeting(); }

void GreetingTypes(mp::TypeRegistry& r) {
  r.Register<Greeting>("Greeting", &MakeGreeting).Expose<&Greeting::Get>("get");
}

absl::Status SetGreeting(std::string greeting, int64_t times) {
  std::string repeated;
  for (int64_t i = 0; i < times; ++i) repeated += greeting;
  g_greeting = new std::string(std::move(repeated));
  return absl::OkStatus();
}
void SetGreetingVoid(const std::string& greeting) { g_greeting = new std::string(greeting); }
absl::Status RefuseToStart(std::string why) { return absl::PermissionDeniedError(why); }
void ThrowAtStart() { throw std::runtime_error("initializer broke"); }

// ---- Children ----

// Serves (ServeManager) in this child until `stop` is readable; tells `report` the address first.
absl::Status ServeUntilStopped(mp::Connection report, mp::PassedFd stop) {
  return mp::ServeManager(
      {.authkey = "serve key"}, &CounterTypes,
      [&report](const std::string& address) { report.Send(address).IgnoreError(); }, stop.fd);
}

absl::Status FillDict(mp::DictProxy<std::string, int64_t> d, mp::ListProxy<int64_t> l, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (absl::Status s = d.Set(absl::StrCat("k", i), i * i); !s.ok()) return s;
    if (absl::Status s = l.Append(i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status AddToCounter(mp::Proxy<Counter> c, int64_t times) {
  for (int64_t i = 0; i < times; ++i) {
    absl::StatusOr<int64_t> n = c.Call<&Counter::Add>(1);
    if (!n.ok()) return n.status();
  }
  return absl::OkStatus();
}

absl::Status AddToTally(mp::Proxy<Tally> t, int64_t times) {
  for (int64_t i = 0; i < times; ++i) {
    if (absl::StatusOr<int64_t> n = t.Call<&Tally::Add>(1); !n.ok()) return n.status();
  }
  return absl::OkStatus();
}

// Connects to the manager at `address`, makes `n` objects, and dies without dropping them.
absl::Status LeakAndDie(std::string address, std::string authkey, int64_t n) {
  absl::StatusOr<mp::Manager> m = mp::Manager::Connect(address, authkey);
  if (!m.ok()) return m.status();
  std::vector<mp::DictProxy<int64_t, int64_t>> held;
  for (int64_t i = 0; i < n; ++i) {
    absl::StatusOr<mp::DictProxy<int64_t, int64_t>> d = m->Dict<int64_t, int64_t>();
    if (!d.ok()) return d.status();
    held.push_back(*std::move(d));
  }
  ::kill(::getpid(), SIGKILL);
  return absl::InternalError("not killed");
}

// Reads a value through a proxy it received, and writes it back doubled.
absl::Status Double(mp::ValueProxy<int64_t> v) {
  absl::StatusOr<int64_t> x = v.Get();
  if (!x.ok()) return x.status();
  return v.Set(*x * 2);
}

// Appends through a list it finds in a dict.
absl::Status AppendThroughNested(mp::DictProxy<std::string, mp::ListProxy<int64_t>> d) {
  absl::StatusOr<mp::ListProxy<int64_t>> l = d.Get("a");
  if (!l.ok()) return l.status();
  return l->Append(3);
}

// Reads the segment's first byte and the list's sum; writes them into the list's last element.
absl::Status ReadShared(mp::SharedMemory shm, mp::ShareableList<int64_t> sl) {
  int64_t sum = shm.buf()[0];
  for (int64_t v : sl.ToVector()) sum += v;
  return sl.Set(-1, sum);
}

template <typename M>
class ManagerTest : public mp::testing::ManagerTestBase<M, &CounterTypes> {
 protected:
  // Waits (bounded) until the server holds `n` objects: a session's end reaches it asynchronously.
  static void ExpectObjectCountBecomes(const mp::Manager& m, size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::StatusOr<size_t> count = m.ObjectCount();
    while (count.ok() && *count != n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
      count = m.ObjectCount();
    }
    ASSERT_TRUE(count.ok()) << count.status();
    EXPECT_EQ(*count, n);
  }
};
TYPED_TEST_SUITE(ManagerTest, mp::testing::AllStartMethods, mp::testing::StartMethodNames);

TYPED_TEST(ManagerTest, DictMethods) {
  mp::Manager m = this->Start();
  const std::vector<std::pair<std::string, int64_t>> initial = {{"a", 1}, {"b", 2}};
  absl::StatusOr<mp::DictProxy<std::string, int64_t>> d =
      m.Dict<std::string, int64_t>(absl::MakeConstSpan(initial));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d->Get("a"), 1);
  EXPECT_EQ(d->Get("zz").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*d->Get("zz", 7), 7);
  ASSERT_TRUE(d->Set("c", 3).ok());
  ASSERT_TRUE(d->Set("a", 10).ok());  // keeps its place
  EXPECT_THAT(*d->Items(), ElementsAre(Pair("a", 10), Pair("b", 2), Pair("c", 3)));
  EXPECT_THAT(*d->Keys(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(*d->Values(), ElementsAre(10, 2, 3));
  EXPECT_TRUE(*d->Contains("b"));
  EXPECT_FALSE(*d->Contains("zz"));
  EXPECT_EQ(*d->Size(), 3u);
  EXPECT_EQ(*d->Pop("b"), 2);
  EXPECT_EQ(d->Pop("b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*d->Pop("b", -1), -1);
  EXPECT_EQ(*d->SetDefault("a", 99), 10);
  EXPECT_EQ(*d->SetDefault("d", 4), 4);
  EXPECT_EQ(d->Erase("zz").code(), StatusCode::kNotFound);
  ASSERT_TRUE(d->Erase("c").ok());
  EXPECT_THAT(*d->PopItem(), Pair("d", 4));
  ASSERT_TRUE(d->Clear().ok());
  EXPECT_EQ(*d->Size(), 0u);
  EXPECT_EQ(d->PopItem().status().code(), StatusCode::kNotFound);
}

TYPED_TEST(ManagerTest, ListMethods) {
  mp::Manager m = this->Start();
  const std::vector<int64_t> initial = {1, 2, 3};
  absl::StatusOr<mp::ListProxy<int64_t>> l = m.List<int64_t>(absl::MakeConstSpan(initial));
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE(l->Append(4).ok());
  const std::vector<int64_t> more = {5, 3};
  ASSERT_TRUE(l->Extend(absl::MakeConstSpan(more)).ok());
  EXPECT_THAT(*l->ToVector(), ElementsAre(1, 2, 3, 4, 5, 3));
  EXPECT_EQ(*l->Get(0), 1);
  EXPECT_EQ(*l->Get(-1), 3);
  EXPECT_EQ(l->Get(6).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(l->Get(-7).status().code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(l->Set(1, 20).ok());
  ASSERT_TRUE(l->Insert(0, 0).ok());
  ASSERT_TRUE(l->Insert(100, 9).ok());  // clamps: appends
  EXPECT_THAT(*l->ToVector(), ElementsAre(0, 1, 20, 3, 4, 5, 3, 9));
  EXPECT_EQ(*l->Index(3), 3);
  EXPECT_EQ(l->Index(42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*l->Count(3), 2u);
  ASSERT_TRUE(l->Remove(3).ok());
  EXPECT_EQ(l->Remove(42).code(), StatusCode::kNotFound);
  EXPECT_THAT(*l->Slice(1, 3), ElementsAre(1, 20));
  EXPECT_THAT(*l->Slice(-2, 100), ElementsAre(3, 9));
  EXPECT_THAT(*l->Slice(5, 2), ElementsAre());
  EXPECT_EQ(*l->Pop(), 9);
  EXPECT_EQ(*l->Pop(0), 0);
  ASSERT_TRUE(l->Erase(0).ok());
  ASSERT_TRUE(l->Reverse().ok());
  EXPECT_THAT(*l->ToVector(), ElementsAre(3, 5, 4, 20));
  EXPECT_EQ(*l->Size(), 4u);
  ASSERT_TRUE(l->Clear().ok());
  EXPECT_EQ(l->Pop().status().code(), StatusCode::kOutOfRange);
}

TYPED_TEST(ManagerTest, NamespaceValueArray) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::NamespaceProxy> ns = m.Namespace();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->Set("x", int64_t{1}).ok());
  ASSERT_TRUE(ns->Set("y", std::string("hello")).ok());
  EXPECT_EQ(*ns->Get<int64_t>("x"), 1);
  EXPECT_EQ(*ns->Get<std::string>("y"), "hello");
  absl::StatusOr<std::string> wrong = ns->Get<std::string>("x");
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("i64"));
  EXPECT_EQ(ns->Get<int64_t>("z").status().code(), StatusCode::kNotFound);
  EXPECT_THAT(*ns->Names(), ElementsAre("x", "y"));
  ASSERT_TRUE(ns->Erase("x").ok());
  EXPECT_EQ(ns->Erase("x").code(), StatusCode::kNotFound);

  absl::StatusOr<mp::ValueProxy<double>> v = m.Value<double>(1.5);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v->Get(), 1.5);
  ASSERT_TRUE(v->Set(2.5).ok());
  EXPECT_EQ(*v->Get(), 2.5);

  absl::StatusOr<mp::ArrayProxy<int32_t>> a = m.Array<int32_t>(3);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(*a->ToVector(), ElementsAre(0, 0, 0));
  ASSERT_TRUE(a->Set(-1, 7).ok());
  EXPECT_EQ(*a->Get(2), 7);
  EXPECT_EQ(a->Set(3, 1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(*a->Size(), 3u);
  const std::vector<int32_t> init = {4, 5};
  absl::StatusOr<mp::ArrayProxy<int32_t>> b = m.Array<int32_t>(absl::MakeConstSpan(init));
  EXPECT_THAT(*b->Slice(0, 2), ElementsAre(4, 5));
}

TYPED_TEST(ManagerTest, ProxiesTravelToChildren) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::DictProxy<std::string, int64_t>> d = m.Dict<std::string, int64_t>();
  absl::StatusOr<mp::ListProxy<int64_t>> l = m.List<int64_t>();
  ASSERT_TRUE(d.ok() && l.ok());
  mp::Process p = this->Run(mp::Call<&FillDict>(*d, *l, int64_t{10}));
  this->ExpectExit(p, 0);
  EXPECT_EQ(*d->Size(), 10u);
  EXPECT_EQ(*d->Get("k9"), 81);
  EXPECT_EQ(*l->Size(), 10u);

  absl::StatusOr<mp::ValueProxy<int64_t>> v = m.Value<int64_t>(21);
  mp::Process q = this->Run(mp::Call<&Double>(*v));
  this->ExpectExit(q, 0);
  EXPECT_EQ(*v->Get(), 42);
}

TYPED_TEST(ManagerTest, ObjectsDieWithTheirLastProxy) {
  mp::Manager m = this->Start();
  EXPECT_EQ(*m.ObjectCount(), 0u);
  {
    absl::StatusOr<mp::DictProxy<int64_t, int64_t>> d = m.Dict<int64_t, int64_t>();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*m.ObjectCount(), 1u);
    mp::DictProxy<int64_t, int64_t> copy = *d;  // shares the reference
    {
      mp::DictProxy<int64_t, int64_t> moved = std::move(*d);
      EXPECT_EQ(*m.ObjectCount(), 1u);
    }
    ASSERT_TRUE(copy.Set(1, 2).ok());
    EXPECT_EQ(*m.ObjectCount(), 1u);
  }
  EXPECT_EQ(*m.ObjectCount(), 0u);

  // A child's reference keeps the object alive while it runs; its end drops it.
  absl::StatusOr<mp::ValueProxy<int64_t>> v = m.Value<int64_t>(1);
  mp::Process p = this->Run(mp::Call<&Double>(*v));
  this->ExpectExit(p, 0);
  EXPECT_EQ(*v->Get(), 2);
  this->ExpectObjectCountBecomes(m, 1);
}

TYPED_TEST(ManagerTest, AClientThatDiesHoldingReferencesLeaksNothing) {
  mp::Manager m = this->Start();
  mp::Process p = this->Run(mp::Call<&LeakAndDie>(m.address(), m.authkey(), int64_t{5}));
  ASSERT_TRUE(p.Join(absl::Seconds(60)).ok());
  EXPECT_EQ(p.ExitCode(), -SIGKILL);
  this->ExpectObjectCountBecomes(m, 0);
}

TYPED_TEST(ManagerTest, EveryCallIsUnavailableOnceTheServerIsKilled) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::DictProxy<int64_t, int64_t>> d = m.Dict<int64_t, int64_t>();
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->Set(1, 1).ok());
  ASSERT_NE(m.process(), nullptr);
  const std::string socket = m.address();
  ASSERT_TRUE(const_cast<mp::Process*>(m.process())->Kill().ok());
  ASSERT_TRUE(m.Join(absl::Seconds(60)).ok());
  absl::Status s = d->Set(2, 2);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_EQ(d->Get(1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((m.Dict<int64_t, int64_t>().status().code()), StatusCode::kUnavailable);
  EXPECT_TRUE(m.Shutdown().ok());
  // A SIGKILLed server leaves its socket file: remove what it made.
  ::unlink(socket.c_str());
  ::rmdir(socket.substr(0, socket.rfind('/')).c_str());
}

TYPED_TEST(ManagerTest, ShutdownEndsTheServer) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::ListProxy<int64_t>> l = m.List<int64_t>();
  ASSERT_TRUE(l.ok());
  const std::string socket = m.address();
  ASSERT_TRUE(m.Shutdown().ok());
  EXPECT_FALSE(m.process()->IsAlive());
  EXPECT_EQ(m.process()->ExitCode(), 0);
  EXPECT_EQ(l->Append(1).code(), StatusCode::kUnavailable);
  EXPECT_NE(::access(socket.c_str(), F_OK), 0);  // it removed its socket
  EXPECT_TRUE(m.Shutdown().ok());                // idempotent
}

TYPED_TEST(ManagerTest, RemoteOverTcp) {
  mp::Manager m = this->Start({.address = "127.0.0.1:0", .authkey = "remote secret"});
  EXPECT_THAT(m.address(), HasSubstr("127.0.0.1:"));
  absl::StatusOr<mp::Manager> other = mp::Manager::Connect(m.address(), "remote secret");
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<mp::DictProxy<std::string, int64_t>> d = other->Dict<std::string, int64_t>();
  absl::StatusOr<mp::ListProxy<int64_t>> l = other->List<int64_t>();
  ASSERT_TRUE(d.ok() && l.ok());
  mp::Process p = this->Run(mp::Call<&FillDict>(*d, *l, int64_t{3}));
  this->ExpectExit(p, 0);
  EXPECT_EQ(*d->Get("k2"), 4);
  absl::StatusOr<mp::Manager> wrong = mp::Manager::Connect(m.address(), "wrong");
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated) << wrong.status();
  EXPECT_EQ(other->Shutdown().code(), StatusCode::kFailedPrecondition);
}

TYPED_TEST(ManagerTest, RegisteredClass) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::Proxy<Counter>> c = m.Create<Counter>(int64_t{10});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c->Call<&Counter::Add>(5), 15);
  EXPECT_EQ(*c->Call<&Counter::Get>(), 15);
  EXPECT_EQ(*c->Call<&Counter::Describe>("n="), "n=15");
  EXPECT_EQ(c->Call<&Counter::Reset>(-1).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(c->Call<&Counter::Reset>(1).ok());
  absl::Status thrown = c->Call<&Counter::Throw>();
  EXPECT_EQ(thrown.code(), StatusCode::kUnknown);
  EXPECT_THAT(thrown.message(), HasSubstr("counter broke"));

  mp::Process p = this->Run(mp::Call<&AddToCounter>(*c, int64_t{100}));
  this->ExpectExit(p, 0);
  EXPECT_EQ(*c->Call<&Counter::Get>(), 101);

  absl::StatusOr<mp::Proxy<Counter>> forked = c->CallProxy<&Counter::Fork>();
  ASSERT_TRUE(forked.ok()) << forked.status();
  EXPECT_EQ(*forked->Call<&Counter::Get>(), 202);
  EXPECT_EQ(*m.ObjectCount(), 2u);

  // The factory's parameter types, exactly.
  absl::StatusOr<mp::Proxy<Counter>> bad = m.Create<Counter>(int32_t{1});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status();
}

TYPED_TEST(ManagerTest, NestedProxiesKeepTheirObjectsAlive) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::DictProxy<std::string, mp::ListProxy<int64_t>>> outer =
      m.Dict<std::string, mp::ListProxy<int64_t>>();
  ASSERT_TRUE(outer.ok()) << outer.status();
  {
    absl::StatusOr<mp::ListProxy<int64_t>> inner = m.List<int64_t>();
    ASSERT_TRUE(inner.ok());
    ASSERT_TRUE(inner->Append(1).ok());
    ASSERT_TRUE(outer->Set("a", *inner).ok());
  }  // the only proxy of the list is gone: the dict keeps it
  EXPECT_EQ(*m.ObjectCount(), 2u);
  {
    absl::StatusOr<mp::ListProxy<int64_t>> got = outer->Get("a");
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->Append(2).ok());
    mp::Process p = this->Run(mp::Call<&AppendThroughNested>(*outer));
    this->ExpectExit(p, 0);
    EXPECT_THAT(*got->ToVector(), ElementsAre(1, 2, 3));
    ASSERT_TRUE(outer->Erase("a").ok());
    EXPECT_EQ(*m.ObjectCount(), 2u);  // `got` still refers to it
  }
  EXPECT_EQ(*m.ObjectCount(), 1u);

  // In a list, a queue, a Namespace and a Value too; and taken out by Pop.
  absl::StatusOr<mp::ListProxy<mp::DictProxy<int64_t, int64_t>>> dicts =
      m.List<mp::DictProxy<int64_t, int64_t>>();
  absl::StatusOr<mp::QueueProxy<mp::ValueProxy<int64_t>>> q = m.Queue<mp::ValueProxy<int64_t>>();
  absl::StatusOr<mp::NamespaceProxy> ns = m.Namespace();
  ASSERT_TRUE(dicts.ok() && q.ok() && ns.ok());
  {
    absl::StatusOr<mp::DictProxy<int64_t, int64_t>> d = m.Dict<int64_t, int64_t>();
    ASSERT_TRUE(d->Set(1, 10).ok());
    ASSERT_TRUE(dicts->Append(*d).ok());
    absl::StatusOr<mp::ValueProxy<int64_t>> v = m.Value<int64_t>(5);
    ASSERT_TRUE(q->Put(*v).ok());
    ASSERT_TRUE(ns->Set("v", *v).ok());
  }
  EXPECT_EQ(*m.ObjectCount(), 6u);  // outer, dicts, q, ns, the dict, the value
  absl::StatusOr<mp::DictProxy<int64_t, int64_t>> d = dicts->Pop();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d->Get(1), 10);
  absl::StatusOr<mp::ValueProxy<int64_t>> v = q->Get();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v->Get(), 5);
  absl::StatusOr<mp::ValueProxy<int64_t>> from_ns = ns->Get<mp::ValueProxy<int64_t>>("v");
  ASSERT_TRUE(from_ns.ok()) << from_ns.status();
  ASSERT_TRUE(ns->Erase("v").ok());
  ASSERT_TRUE(from_ns->Set(6).ok());
  EXPECT_EQ(*v->Get(), 6);

  // A proxy of another manager is refused.
  mp::Manager other = this->Start();
  absl::StatusOr<mp::ListProxy<int64_t>> foreign = other.List<int64_t>();
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(outer->Set("f", *foreign).code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(ManagerTest, SharedMemoryManager) {
  absl::StatusOr<mp::SharedMemoryManager> smm = mp::SharedMemoryManager::Start(TypeParam::Get());
  ASSERT_TRUE(smm.ok()) << smm.status();
  absl::StatusOr<mp::SharedMemory> shm = smm->SharedMemory(64);
  ASSERT_TRUE(shm.ok()) << shm.status();
  shm->buf()[0] = 7;
  const std::vector<int64_t> values = {1, 2, 0};
  absl::StatusOr<mp::ShareableList<int64_t>> sl = smm->ShareableList<int64_t>(values);
  ASSERT_TRUE(sl.ok()) << sl.status();
  EXPECT_EQ(smm->SharedMemory(0).status().code(), StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<std::string>> names = smm->Segments();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 2u);
  mp::Process p = this->Run(mp::Call<&ReadShared>(*shm, *sl));
  this->ExpectExit(p, 0);
  EXPECT_EQ(*sl->Get(-1), 10);
  const std::string shm_name = shm->name();
  const std::string sl_name = sl->name();
  ASSERT_TRUE(smm->Shutdown().ok());
  // Unlinked with the manager (the mappings here stay valid until closed).
  EXPECT_EQ(mp::SharedMemory::Attach(shm_name).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(mp::SharedMemory::Attach(sl_name).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*sl->Get(-1), 10);
}

TYPED_TEST(ManagerTest, AKilledSharedMemoryManagersSegmentsAreReclaimed) {
  absl::StatusOr<mp::SharedMemoryManager> smm = mp::SharedMemoryManager::Start(TypeParam::Get());
  ASSERT_TRUE(smm.ok()) << smm.status();
  absl::StatusOr<mp::SharedMemory> shm = smm->SharedMemory(64);
  ASSERT_TRUE(shm.ok()) << shm.status();
  const std::string socket = smm->address();
  ASSERT_TRUE(const_cast<mp::Process*>(smm->process())->Kill().ok());
  ASSERT_TRUE(smm->Join(absl::Seconds(60)).ok());
  absl::StatusOr<std::vector<std::string>> reclaimed = mp::SharedMemory::ReclaimOrphans();
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_THAT(*reclaimed, ::testing::Contains(shm->name()));
  EXPECT_EQ(mp::SharedMemory::Attach(shm->name()).status().code(), StatusCode::kNotFound);
  ::unlink(socket.c_str());
  ::rmdir(socket.substr(0, socket.rfind('/')).c_str());
}

// The initializer runs in the server process before it serves: its arguments arrive there with
// every start method, and what it sets is what the served objects see.
TYPED_TEST(ManagerTest, StartRunsTheInitializerInTheServer) {
  absl::StatusOr<mp::Manager> m = mp::Manager::Start<&GreetingTypes, &SetGreeting>(
      TypeParam::Get(), {}, std::string("hi"), int64_t{3});
  ASSERT_TRUE(m.ok()) << m.status();
  absl::StatusOr<mp::Proxy<Greeting>> g = m->Create<Greeting>();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(*g->Call<&Greeting::Get>(), "hihihi");
  EXPECT_EQ(g_greeting, nullptr);  // not here
  ASSERT_TRUE(m->Shutdown().ok());

  absl::StatusOr<mp::Manager> v = mp::Manager::Start<&GreetingTypes, &SetGreetingVoid>(
      TypeParam::Get(), {}, std::string("hello"));
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<mp::Proxy<Greeting>> h = v->Create<Greeting>();
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h->Call<&Greeting::Get>(), "hello");
}

// An initializer's error status, or its exception, is Start's failure, naming it; the server
// process is gone.
TYPED_TEST(ManagerTest, AFailingInitializerFailsStart) {
  absl::StatusOr<mp::Manager> refused =
      mp::Manager::Start<nullptr, &RefuseToStart>(TypeParam::Get(), {}, std::string("no disk"));
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("RefuseToStart"));
  EXPECT_THAT(refused.status().message(), HasSubstr("no disk"));

  absl::StatusOr<mp::Manager> threw = mp::Manager::Start<nullptr, &ThrowAtStart>(TypeParam::Get());
  EXPECT_EQ(threw.status().code(), StatusCode::kUnknown) << threw.status();
  EXPECT_THAT(threw.status().message(), HasSubstr("ThrowAtStart"));
  EXPECT_THAT(threw.status().message(), HasSubstr("initializer broke"));
}

// ServeManager (serve_forever) in a process of its own: a client of another "program" connects
// with the authkey; a byte on stop_fd stops it, and it exits 0.
TYPED_TEST(ManagerTest, ServeManagerServesUntilItsStopFd) {
  int stop[2];
  ASSERT_EQ(::pipe2(stop, O_CLOEXEC), 0);
  absl::StatusOr<std::pair<mp::Connection, mp::Connection>> report = mp::Pipe();
  ASSERT_TRUE(report.ok()) << report.status();
  mp::Process server = this->Run(
      mp::Call<&ServeUntilStopped>(std::move(report->second), mp::PassedFd{.fd = stop[0]}));
  ::close(stop[0]);
  absl::StatusOr<std::string> address = report->first.Recv<std::string>();
  ASSERT_TRUE(address.ok()) << address.status();
  {
    absl::StatusOr<mp::BaseManager> m =
        mp::BaseManager::Connect<&CounterTypes>(*address, "serve key");
    ASSERT_TRUE(m.ok()) << m.status();
    absl::StatusOr<mp::Proxy<Counter>> c = m->Create<Counter>(int64_t{5});
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c->Call<&Counter::Add>(2), 7);
    EXPECT_EQ(mp::BaseManager::Connect(*address, "wrong key").status().code(),
              StatusCode::kUnauthenticated);
  }
  ASSERT_EQ(::write(stop[1], "x", 1), 1);
  ::close(stop[1]);
  this->ExpectExit(server, 0);
  EXPECT_EQ(::access(address->c_str(), F_OK), -1);  // its socket file is gone
  EXPECT_EQ(mp::ServeManager({}, nullptr, nullptr, 1000).code(), StatusCode::kInvalidArgument);
}

// A factory returning a std::shared_ptr hands every Create the one object it keeps; calls from
// several clients through different proxies are serialized, and none is lost.
TYPED_TEST(ManagerTest, AFactoryMayShareOneObject) {
  mp::Manager m = this->Start();
  absl::StatusOr<mp::Proxy<Tally>> a = m.Create<Tally>();
  absl::StatusOr<mp::Proxy<Tally>> b = m.Create<Tally>();
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_NE(a->token().id, b->token().id);  // two references (two proxies' objects) ...
  EXPECT_EQ(*a->Call<&Tally::Add>(1), 1);
  EXPECT_EQ(*b->Call<&Tally::Add>(1), 2);  // ... to one Tally
  constexpr int64_t kTimes = 300;
  mp::Process p1 = this->Run(mp::Call<&AddToTally>(*a, kTimes));
  mp::Process p2 = this->Run(mp::Call<&AddToTally>(*b, kTimes));
  ASSERT_TRUE(AddToTally(*a, kTimes).ok());
  this->ExpectExit(p1, 0);
  this->ExpectExit(p2, 0);
  EXPECT_EQ(*a->Call<&Tally::Add>(0), 2 + 3 * kTimes);
}

}  // namespace manager_test
