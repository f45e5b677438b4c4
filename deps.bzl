"""Repositories mp needs, declared by one macro for mp itself and for every consumer.

A consumer's WORKSPACE:

    local_repository(name = "mp", path = "/path/to/mp")   # or http_archive/git_repository
    load("@mp//:deps.bzl", "mp_deps")
    mp_deps()

Everything comes from Debian packages installed by tools/setup: nothing is downloaded at build time.
A repository the consumer already declared (for example a real rules_cc) is left alone.

Difference from ../shared/bazel-offline.md: the shims are declared with a repository rule that finds
them through a Label inside @mp instead of a workspace-relative path, so the same macro works from any
consumer workspace; the system libraries repository is called "mp_system" so it cannot clash with a
consumer's own "system".
"""

def _shim_repo_impl(ctx):
    # The marker is a file at the top of the shim's folder in this repository; link the whole folder.
    folder = ctx.path(ctx.attr.marker).dirname
    for child in folder.readdir():
        ctx.symlink(child, child.basename)

_shim_repo = repository_rule(
    implementation = _shim_repo_impl,
    attrs = {"marker": attr.label(allow_single_file = True, mandatory = True)},
    local = True,
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def mp_deps():
    """Declares every external repository mp needs, skipping names that already exist."""
    _maybe(_shim_repo, "rules_cc", marker = Label("//third_party/rules_cc:WORKSPACE"))
    _maybe(
        _shim_repo,
        "remote_coverage_tools",
        marker = Label("//third_party/remote_coverage_tools:WORKSPACE"),
    )
    _maybe(native.local_repository, "rules_java", path = "/usr/share/bazel/rules/java")
    _maybe(native.local_repository, "platforms", path = "/usr/share/bazel/tools/platforms")
    _maybe(
        native.new_local_repository,
        "mp_system",
        path = "/usr",
        build_file = str(Label("//third_party:system.BUILD")),
    )
