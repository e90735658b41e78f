// How parallel/*.cpp include MPI (and nothing outside parallel/ may): the C API only. Open MPI's
// and MPICH's mpi.h otherwise pull in the long-deprecated C++ bindings, which need an extra
// library (libmpi_cxx) at link time.
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
