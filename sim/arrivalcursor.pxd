# Cython declarations for arrivalcursor.py (compiled build only; see
# driftsched/ground/compiled.py): the cursor's position and clock as C fields. The .py stays
# the one implementation.

cimport cython

from driftsched.sim.records cimport RecordBook


cdef class ArrivalCursor:
    cdef public object frame
    cdef public object arrival_s
    cdef public object prompt_tokens
    cdef public dict slos
    cdef public object gateway
    cdef public object dispatcher
    cdef public RecordBook book
    cdef public dict admissions
    cdef public long n
    cdef public dict _ranks
    cdef public long _start
    cdef public long _k
    cdef public long _len
    cdef public list _times
    cdef public list _ids
    cdef public list _tenants
    cdef public list _tiers
    cdef public list _categories
    cdef public list _prompt
    cdef public list _max_tokens
    cdef public list _ttft_slo
    cdef public list _e2e_slo
    cdef public double next_s
    cdef public double _clock_s

    @cython.locals(wait=double)
    cpdef double due_s(self) except? -1.0
    @cython.locals(k=long, i=long, t_s=double, wait=double, now=double)
    cpdef bint admit_next(self) except -1
    cpdef admit_before(self, double limit_s)
