// Copyright 2026 The mp Authors.
//
// pool/task.h — the task registry and how a worker runs one task (internal to mp).
//
// A task is a registered function: Map<&Fn>(...) instantiates TaskRegistrar<Fn>, which registers
// Fn by its qualified name before main in every copy of the program, so a worker of any start
// method finds it by name. RunTask<Fn> decodes a task's arguments, calls Fn and appends its encoded
// result (AppendOk / AppendError); RunBatch<Fn> runs a run of raw arithmetic arguments at once.

#ifndef MP_POOL_TASK_H_
#define MP_POOL_TASK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "futures/future.h"
#include "serialize/codec.h"
#include "start_methods/target.h"

namespace mp {

// The result of a task whose function returns void or absl::Status (futures' Unit).
using PoolUnit = Unit;

namespace pool_internal {

// Inside a catch block: the status a task's escaped exception becomes, kUnknown "Pool: <function>
// threw <demangled type>: <what()>" (what() only for a std::exception).
absl::Status CurrentExceptionStatus(absl::string_view function);

// Runs one task: decodes the arguments, calls the function, appends one encoded result to `out`.
// An exception the function throws becomes the task's failure (CurrentExceptionStatus).
using TaskFn = void (*)(absl::Span<const uint8_t> args, std::string& out);

// Runs `count` tasks whose single argument is arithmetic (item_size bytes each, raw) and whose
// result is a plain arithmetic value, appending the raw results to `out`; stores each task's
// absolute index (first + i) into *index before running it. False (nothing done) if item_size does
// not match. When task i throws, stops there: `out` holds the raw results of tasks 0 .. i - 1, *ran
// is i and *thrown the exception's status (else *ran is count and *thrown OK). Only for such
// functions; nullptr otherwise.
using BatchFn = bool (*)(const uint8_t* items, uint32_t count, uint32_t item_size, uint64_t first,
                         std::atomic<uint64_t>* index, std::string& out, uint32_t* ran,
                         absl::Status* thrown);

// Registry of task functions (by qualified name, with "#2" suffixes on clashes like
// process_internal::RegisterFunction). Returns the registered name. Never fails.
const std::string* RegisterTask(std::string name, const void* key, TaskFn fn, BatchFn batch);
// nullptr if no function has that name.
TaskFn FindTask(absl::string_view name);
BatchFn FindBatch(absl::string_view name);

// One encoded result: byte 0 (ok) + varint length + Codec payload, or byte 1 + the failure as
// Codec<absl::Status> (serialize/status.h).
void AppendError(std::string& out, const absl::Status& status);
template <typename T>
void AppendOk(std::string& out, const T& value) {
  const size_t size = Codec<T>::Size(value);
  const size_t at = out.size();
  out.resize(at + 1 + VarintSize(size) + size);
  ByteWriter w(reinterpret_cast<uint8_t*>(out.data()) + at, out.size() - at);
  w.WriteByte(0);
  w.WriteVarint(size);
  Codec<T>::Encode(value, w);
}
// Reads one encoded result from `r` into *outcome: OK with *payload set to its Codec payload (a
// span of r's input), or the task's failure (never OK: AsFailure). The returned status is about the
// bytes: kInvalidArgument for a tag other than 0 or 1, the reader's errors for a truncated result.
absl::Status ReadResult(ByteReader& r, absl::Status* outcome, absl::Span<const uint8_t>* payload);

// Where one task's outcome lies in a results message: a failure, or OK with its Codec payload at
// [offset, offset + length) of the message.
struct TaskOutcome {
  absl::Status status;
  uint32_t offset = 0;
  uint32_t length = 0;
};

template <auto Fn>
using FnTraits = process_internal::FunctionTraits<decltype(Fn)>;
template <auto Fn>
using ResultOf = FutureResultOf<typename FnTraits<Fn>::Result>;
template <auto Fn>
using ArgsOf = typename FnTraits<Fn>::Values;

// Calls Fn with `values` and appends its encoded result to `out`.
template <auto Fn>
void CallAndAppend(ArgsOf<Fn>& values, std::string& out) {
  using R = typename FnTraits<Fn>::Result;
  auto call = [&]() -> decltype(auto) { return std::apply(Fn, std::move(values)); };
  if constexpr (std::is_void_v<R>) {
    call();
    AppendOk(out, PoolUnit{});
  } else if constexpr (std::is_same_v<std::remove_cvref_t<R>, absl::Status>) {
    absl::Status s = call();
    if (s.ok()) {
      AppendOk(out, PoolUnit{});
    } else {
      AppendError(out, s);
    }
  } else if constexpr (std::is_same_v<std::remove_cvref_t<R>, absl::StatusOr<FutureResultOf<R>>>) {
    auto result = call();
    if (result.ok()) {
      AppendOk(out, *result);
    } else {
      AppendError(out, result.status());
    }
  } else {
    AppendOk(out, call());
  }
}

template <auto Fn>
void RunTask(absl::Span<const uint8_t> bytes, std::string& out) {
  using Values = ArgsOf<Fn>;
  const size_t at = out.size();
  try {
    Values values{};
    ByteReader r(bytes);
    if (absl::Status s = Codec<Values>::Decode(r, values); !s.ok() || r.remaining() != 0) {
      AppendError(out, absl::InvalidArgumentError(absl::StrCat(
                           "Pool: arguments of ", process_internal::QualifiedName<Fn>(),
                           " did not decode: ", s.ok() ? "trailing bytes" : s.message())));
      return;
    }
    CallAndAppend<Fn>(values, out);
  } catch (...) {
    // Whatever the task threw (or the result's encoding): the task fails, the worker goes on.
    out.resize(at);
    AppendError(out, CurrentExceptionStatus(process_internal::QualifiedName<Fn>()));
  }
}

template <auto Fn>
constexpr bool kBatchable = [] {
  using Args = ArgsOf<Fn>;
  using R = std::remove_cvref_t<typename FnTraits<Fn>::Result>;
  if constexpr (std::tuple_size_v<Args> != 1) {
    return false;
  } else {
    return codec_internal::kBulkCopyable<std::tuple_element_t<0, Args>> &&
           codec_internal::kBulkCopyable<R>;
  }
}();

template <auto Fn>
bool RunBatch(const uint8_t* items, uint32_t count, uint32_t item_size, uint64_t first,
              std::atomic<uint64_t>* index, std::string& out, uint32_t* ran, absl::Status* thrown) {
  using P = std::tuple_element_t<0, ArgsOf<Fn>>;
  using R = std::remove_cvref_t<typename FnTraits<Fn>::Result>;
  if (item_size != sizeof(P)) return false;
  const size_t at = out.size();
  out.resize(at + size_t{count} * sizeof(R));
  char* dst = out.data() + at;
  uint32_t i = 0;
  try {
    for (; i < count; ++i) {
      index->store(first + i, std::memory_order_relaxed);
      P p;
      std::memcpy(&p, items + size_t{i} * sizeof(P), sizeof(P));
      const R r = Fn(p);
      std::memcpy(dst + size_t{i} * sizeof(R), &r, sizeof(R));
    }
  } catch (...) {
    out.resize(at + size_t{i} * sizeof(R));
    *thrown = CurrentExceptionStatus(process_internal::QualifiedName<Fn>());
  }
  *ran = i;
  return true;
}

template <auto Fn>
struct TaskRegistrar {
  static BatchFn Batch() {
    if constexpr (kBatchable<Fn>) {
      return &RunBatch<Fn>;
    } else {
      return nullptr;
    }
  }
  static inline const std::string* const name =
      RegisterTask(process_internal::QualifiedName<Fn>(), reinterpret_cast<const void*>(Fn),
                   &RunTask<Fn>, Batch());
};

template <auto Fn>
constexpr void CheckTask() {
  static_assert(
      std::is_pointer_v<decltype(Fn)> && std::is_function_v<std::remove_pointer_t<decltype(Fn)>>,
      "mp::Pool: Fn must be a function (at namespace scope or a static member)");
  RequireCodec<ArgsOf<Fn>>();
  RequireCodec<ResultOf<Fn>>();
}

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_TASK_H_
