#!/usr/bin/env bash
# The "argument without a Codec" cell of the cross-context rules: a compile error with a readable
# message. The positive control (the same file with a Codec) must compile, so a broken include path
# cannot make this test pass.
set -u
src="context/testdata/no_codec.cc"
[ -f "$src" ] || { echo "FAIL: $src not in runfiles (run from the workspace root)"; exit 1; }
cxx="${CXX:-g++}"
flags=(-std=c++20 -fsyntax-only -I. -x c++)

if ! out=$("$cxx" "${flags[@]}" -DGIVE_IT_A_CODEC "$src" 2>&1); then
  echo "FAIL: the control (with MP_FIELDS) does not compile:"; echo "$out"; exit 1
fi
if out=$("$cxx" "${flags[@]}" "$src" 2>&1); then
  echo "FAIL: a process argument without a Codec compiled"; exit 1
fi
if ! grep -q "has no mp::Codec, so it cannot be sent to another process" <<<"$out"; then
  echo "FAIL: the compile error does not carry mp's message:"; echo "$out" | head -40; exit 1
fi
echo "PASS: no Codec -> compile error with mp's message; with MP_FIELDS it compiles"
