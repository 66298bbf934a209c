# Cython declarations for costmodel.py (compiled build only; see driftsched/ground/compiled.py):
# the run arithmetic with C doubles. The .py stays the one implementation.

cimport cython


cdef class CostModel:
    cdef public object profile
    cdef public dict coefficients
    cdef public double _growth
    cdef public object step_time
    cdef public object step_seconds

    @cython.locals(growth=double)
    cpdef double run_seconds(self, double first_s, long decode_requests, long steps) except? -1.0
    # k stays a Python int: a near-zero step time makes it huge, never a C overflow
    @cython.locals(a=double, g=double, b=double)
    cpdef steps_within(self, double first_s, long decode_requests, double seconds)
