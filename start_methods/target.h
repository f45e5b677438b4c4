// Copyright 2026 The mp Authors.
//
// start_methods/target.h — what a child process runs.
//
// A `mp::Target` is the body of a Process. There are two kinds:
//
//  * `mp::Call<&Fn>(args...)`: a function called by name with encodable arguments. This is the only
//    kind a `spawn` or `forkserver` child can run, because those children are fresh processes of
//    the same program: the function travels as its registered name and the arguments as their
//    mp::Codec encoding (serialize/codec.h), inside the FlatBuffers launch record
//    (start_methods/launch_record.fbs). A `fork` child runs it too (it just calls Fn).
//
//  * `mp::Target::Callable(f)`: any callable (lambda, std::function, functor). Only a `fork` child
//    can run it — it shares the parent's memory image; the other methods refuse it with
//    kFailedPrecondition when the Process is created.
//
// A target returns `int` (the exit code), `absl::Status` (OK -> exit code 0; an error -> exit code
// 1 with the status printed on the child's stderr, as CPython prints the traceback) or `void` (0).
// A C++ exception that escapes a target ends the child with exit code 1 and "mp: process '<name>'
// (pid N): target raised <type>: <what()>" on its stderr, under every start method; it never
// unwinds into the parent's code (a fork child's frames above the target are the parent's).
//
//   int Worker(int64_t id, std::string label, mp::PassedFd out);   // at namespace scope
//
//   absl::StatusOr<mp::Process> p = mp::Process::Create(
//       mp::SpawnStartMethod(), mp::Call<&Worker>(7, "seven", mp::PassedFd{pipe_w}));
//
// Registration. Writing `mp::Call<&Worker>(...)` anywhere in a program registers `Worker` under its
// qualified name (e.g. "shop::Worker") in every process of that program, before main: the
// registration is a static member of a class template that `Call<&Worker>` instantiates, so a spawn
// child — the same executable — has the same function registered under the same name by the time
// mp::Init runs. There is no macro to forget and no way to name an unregistered function. (The
// design card suggested an MP_REGISTER(fn) macro; implicit registration gives the same table with a
// compile-time guarantee instead of a run-time "not registered" error.) Two different functions
// that print the same qualified name (functions in anonymous namespaces of different files) get
// "#2",
// "#3"... suffixes in registration order, which is the same in every run of one binary.
//
// Arguments. Each parameter type of Fn (decayed) must have an mp::Codec; a missing Codec is a
// compile-time error with a readable message (mp::RequireCodec). Call converts its arguments to the
// parameter types, encodes them once (with a ScopedFdTable current, so PassedFd arguments record
// their descriptors, see serialize/fd.h) and keeps the values for a fork child. A target runs once
// per child, so the values are moved into Fn: move-only types (mp::Connection) may be taken by
// value. The child receives its own copies of the descriptors, which the target owns. In the
// parent, a PassedFd's descriptor stays the caller's (a PassedFd owns nothing); an argument that
// owns its descriptor (a Connection moved into Call) is destroyed when the Process that holds the
// Target starts, so the parent keeps no copy of it (see Process::Start).
//
// Thread safety: a Target is immutable after construction and may be shared between threads.

#ifndef MP_START_METHODS_TARGET_H_
#define MP_START_METHODS_TARGET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "serialize/codec.h"
#include "serialize/fd.h"

namespace mp {

namespace process_internal {

// Prints "mp: process '<name>' (pid N): target failed: <status>" on stderr when `s` is not OK and
// returns the exit code for `s` (0 or 1).
int StatusExitCode(const absl::Status& s);

template <typename>
inline constexpr bool kAlwaysFalse = false;

// Calls f() and turns what it returns into an exit code.
template <typename F>
int InvokeForExitCode(F& f) {
  using R = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<R>) {
    f();
    return 0;
  } else if constexpr (std::is_same_v<std::remove_cvref_t<R>, absl::Status>) {
    return StatusExitCode(f());
  } else if constexpr (std::is_integral_v<std::remove_cvref_t<R>>) {
    return static_cast<int>(f());
  } else {
    static_assert(kAlwaysFalse<R>, "mp: a process target must return int, absl::Status or void");
    return 0;
  }
}

// A registered function, as a spawn/forkserver child finds it: `decode` reads the argument bytes
// (with the received FdTable current) and returns the call, ready to run.
using DecodeCall = absl::StatusOr<std::function<int()>> (*)(absl::Span<const uint8_t> args);

// Adds a function to the registry; returns its registered name (see the header comment). Never
// fails: a name clash between two different functions gets a numeric suffix.
const std::string* RegisterFunction(std::string name, const void* key, DecodeCall decode);

// The registered function called `name`; kNotFound naming it otherwise.
absl::StatusOr<DecodeCall> FindFunction(absl::string_view name);

// The qualified name of F as the compiler prints it ("shop::Worker").
std::string QualifiedNameFromPrettyFunction(absl::string_view pretty);
template <auto F>
std::string QualifiedName() {
  return QualifiedNameFromPrettyFunction(__PRETTY_FUNCTION__);
}

template <typename Fn>
struct FunctionTraits;
template <typename R, typename... P>
struct FunctionTraits<R (*)(P...)> {
  using Result = R;
  using Values = std::tuple<std::remove_cvref_t<P>...>;
};
template <typename R, typename... P>
struct FunctionTraits<R (*)(P...) noexcept> : FunctionTraits<R (*)(P...)> {};

template <typename T>
constexpr bool CheckArgumentCodec() {
  RequireCodec<T>();
  return HasCodec<T>;
}

template <auto F>
absl::StatusOr<std::function<int()>> DecodeAndBind(absl::Span<const uint8_t> args) {
  using Values = typename FunctionTraits<decltype(F)>::Values;
  auto values = std::make_shared<Values>();
  if (absl::Status s = DecodeInto(args, *values); !s.ok()) {
    return absl::InvalidArgumentError("mp: arguments of " + QualifiedName<F>() +
                                      " did not decode: " + std::string(s.message()));
  }
  return std::function<int()>([values]() {
    auto call = [&]() -> decltype(auto) { return std::apply(F, std::move(*values)); };
    return InvokeForExitCode(call);
  });
}

// One static registration per registered function, made before main in every process of the
// program because Call<F> odr-uses it.
template <auto F>
struct FunctionRegistrar {
  static inline const std::string* const name =
      RegisterFunction(QualifiedName<F>(), reinterpret_cast<const void*>(F), &DecodeAndBind<F>);
};

}  // namespace process_internal

class Target {
 public:
  // An empty target: Process::Create refuses it.
  Target() = default;

  // Any callable taking no arguments and returning int, absl::Status or void. `fork` only.
  template <typename F>
  requires std::is_invocable_v < std::decay_t<F>
  & > static Target Callable(F&& f) {
    auto fn = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
    Target t;
    t.run_ = [fn]() { return process_internal::InvokeForExitCode(*fn); };
    return t;
  }

  bool empty() const { return run_ == nullptr; }
  // True for Call<&Fn>(...) targets (which every start method can run).
  bool registered() const { return function_name_ != nullptr; }
  // Registered name of the function ("" for callables).
  absl::string_view function_name() const {
    return function_name_ == nullptr ? absl::string_view() : absl::string_view(*function_name_);
  }
  // Encoded arguments and the descriptors their PassedFd values refer to (not owned, in FdTable
  // index order).
  absl::Span<const uint8_t> encoded_args() const {
    return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(args_.data()), args_.size());
  }
  const std::vector<int>& fds() const { return fds_; }
  // Kinds of the arguments ("Lock", "Queue"...) that only a forked child can use: fork-domain
  // shared objects, which noted themselves while the arguments were encoded (serialize/fd.h
  // NoteForkOnly). spawn and forkserver refuse a target with any.
  const std::vector<std::string>& fork_only_objects() const { return fork_only_; }

  // Runs the target in this process and returns its exit code (what a fork child does).
  int Run() const { return run_(); }

 private:
  template <auto Fn, typename... A>
  friend Target Call(A&&... args);

  std::function<int()> run_;
  const std::string* function_name_ = nullptr;
  std::string args_;
  std::vector<int> fds_;
  std::vector<std::string> fork_only_;
};

// A call of the function Fn with `args` converted to Fn's parameter types. See the header comment.
template <auto Fn, typename... A>
Target Call(A&&... args) {
  static_assert(
      std::is_pointer_v<decltype(Fn)> && std::is_function_v<std::remove_pointer_t<decltype(Fn)>>,
      "mp::Call<&Fn>: Fn must be a function (at namespace scope or a static member)");
  using Traits = process_internal::FunctionTraits<decltype(Fn)>;
  using Values = typename Traits::Values;
  static_assert(std::tuple_size_v<Values> == sizeof...(A),
                "mp::Call<&Fn>(args...): the number of arguments does not match Fn's parameters");
  []<typename... V>(std::tuple<V...>*) {
    static_assert((process_internal::CheckArgumentCodec<V>() && ...));
  }(static_cast<Values*>(nullptr));
  auto values = std::make_shared<Values>(std::forward<A>(args)...);
  Target t;
  t.function_name_ = process_internal::FunctionRegistrar<Fn>::name;
  {
    FdTable table;
    {
      ScopedFdTable scope(&table);
      t.args_ = Encode(*values);
    }
    t.fds_ = table.fds();
    t.fork_only_ = table.fork_only();
  }
  t.run_ = [values]() {
    auto call = [&]() -> decltype(auto) { return std::apply(Fn, std::move(*values)); };
    return process_internal::InvokeForExitCode(call);
  };
  return t;
}

}  // namespace mp

#endif  // MP_START_METHODS_TARGET_H_
