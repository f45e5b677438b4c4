"""The environment of every test that starts mpi children."""

MPI_TEST_ENV = {
    # Tests may run as root (CI does); Open MPI refuses root without both.
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    # Bazel's sandbox may give the test only loopback: MPI's sockets stay on it.
    "OMPI_MCA_btl_tcp_if_include": "lo",
    "OMPI_MCA_oob_tcp_if_include": "lo",
}
