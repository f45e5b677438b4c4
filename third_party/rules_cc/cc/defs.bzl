"""Offline stand-in for @rules_cc//cc:defs.bzl: thin wrappers of the native rules.

Bazel 4.2 (Debian's bazel-bootstrap) wants to download rules_cc; Debian's bazel-rules-cc is too new for it.
Every BUILD in mp loads the cc rules from here, so the tree reads the same with the real rules_cc.
"""

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)
