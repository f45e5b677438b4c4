"""The link lines of system.BUILD's libraries: the Abseil archives mp uses and how a static group is
written."""

# libabsl-dev 20220623: every library mp's code reaches, and the ones they need.
ABSL = [
    "status",
    "statusor",
    "cord",
    "cord_internal",
    "cordz_functions",
    "cordz_handle",
    "cordz_info",
    "strings",
    "strings_internal",
    "str_format_internal",
    "strerror",
    "time",
    "time_zone",
    "hash",
    "city",
    "low_level_hash",
    "raw_hash_set",
    "int128",
    "base",
    "raw_logging_internal",
    "log_severity",
    "spinlock_wait",
    "throw_delegate",
    "synchronization",
    "graphcycles_internal",
    "malloc_internal",
    "stacktrace",
    "symbolize",
    "debugging_internal",
    "demangle_internal",
    "exponential_biased",
    "random_internal_pool_urbg",
    "random_internal_randen",
    "random_internal_randen_hwaes",
    "random_internal_randen_hwaes_impl",
    "random_internal_randen_slow",
    "random_internal_platform",
    "random_internal_seed_material",
    "random_seed_gen_exception",
]

ABSL_FLAGS = [
    "flags_parse",
    "flags_usage",
    "flags_usage_internal",
    "flags_internal",
    "flags_marshalling",
    "flags_reflection",
    "flags_config",
    "flags_program_name",
    "flags_private_handle_accessor",
    "flags_commandlineflag",
    "flags_commandlineflag_internal",
]

def libs(names, prefix = ""):
    """-l options for the libraries `prefix` + each of `names`."""
    return ["-l" + prefix + n for n in names]

def static_group(flags):
    """The -l options `flags`, resolved to static archives and searched as one group."""
    return ["-Wl,--push-state,-Bstatic,--start-group"] + flags + ["-Wl,--end-group,--pop-state"]

def shared_libs(flags):
    """The -l options `flags`, each kept as a needed library even after an --as-needed."""
    return ["-Wl,--push-state,--no-as-needed"] + flags + ["-Wl,--pop-state"]

# libstdc++ and libgcc from their static archives. Bazel's toolchain puts an explicit -lstdc++ near
# the end of every link line, which -static-libstdc++ would not turn static, so libstdc++.a is
# named here (it resolves every C++ runtime symbol the objects before it need) and --as-needed,
# left on for the rest of the line (system.BUILD's :cxx_runtime puts these last among the
# libraries' options), drops the toolchain's shared -lstdc++ when nothing needs it.
# A shared library that needs libstdc++.so itself (Debian's libbenchmark, in benchmarks) still
# loads it.
STATIC_RUNTIME = static_group(["-lstdc++"]) + [
    "-static-libgcc",
    "-Wl,--as-needed",
]
