# Cython declarations for gateway.py (compiled build only; see driftsched/ground/compiled.py):
# the gateway's parts and counters as C-typed fields, and its per-request calls as C calls.
# The .py stays the one implementation.

cimport cython


cdef class Gateway:
    cdef public object policy
    cdef public object corrector
    cdef public object job_classes
    cdef public object depth_by_tier
    cdef public object queued_by_tenant
    cdef public object in_flight_by_tenant
    cdef public long rejected
    cdef public long _seq
    cdef public object _observe
    cdef public object corrector_state
    cdef public object _distribution
    cdef public object _attach
    cdef public object _admit
    cdef public object _on_dispatch
    cdef public object _on_finish
    cdef public bint _tracks
    cdef public dict _views
    cdef public set _withdrawn
    cdef public object state
    cdef public bint _plain

    cpdef tuple admit(self, adm, double now_s)
    @cython.locals(withdrawn=set)
    cpdef next(self, double now_s)
    cpdef _take(self, view, double now_s)
    cpdef finished(self, adm, actual_tokens, outcome=*)
