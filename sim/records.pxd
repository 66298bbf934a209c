# Cython declarations for records.py (compiled build only; see driftsched/ground/compiled.py):
# the per-request writes as C array stores (typed views of the same arrays). The .py stays the
# one implementation.


cdef class RecordBook:
    cdef public long n
    cdef public dict times
    cdef public object estimate
    cdef public object est_class
    cdef public object batch_id
    cdef public object replica
    cdef public object preemptions
    cdef public object generated
    cdef public object dispatch_order
    cdef public long dispatched_count
    cdef public object reject_code
    cdef public dict reject_reasons
    cdef long long[:] _estimate
    cdef signed char[:] _est_class
    cdef double[:] _dispatch_s
    cdef double[:] _finish_s
    cdef long long[:] _dispatch_order
    cdef long long[:] _batch_id
    cdef short[:] _replica
    cdef long long[:] _generated
    cdef long long[:] _preemptions

    cpdef admitted(self, long index, long estimate_tokens, str est_class)
    cpdef dispatched(self, long index, double now_s, long replica_id, long batch=*)
    cpdef finished(self, long index, double now_s, long generated, long preemptions)
