# Cython declarations for dispatcher.py (compiled build only; see
# driftsched/ground/compiled.py): the slots' counters and the dispatcher's settings as C
# fields. The .py stays the one implementation.

cimport cython


cdef class ReplicaSlot:
    cdef public long replica_id
    cdef public long in_engine
    cdef public object pool
    cdef public object engine
    cdef public list batch
    cdef public long batch_left
    cdef public double deadline_s


cdef class Dispatcher:
    cdef public object gateway
    cdef public list slots
    cdef public object send
    cdef public bint continuous
    cdef public long max_concurrency
    cdef public long batch_size
    cdef public double batch_wait_s
    cdef public object router
    cdef public bint _by_request
    cdef public ReplicaSlot _only
    cdef public long batches

    @cython.locals(maxc=long, slot=ReplicaSlot)
    cpdef bint room(self) except -1
    @cython.locals(maxc=long, only=ReplicaSlot, slot=ReplicaSlot)
    cpdef fill(self, double now_s)
    cpdef list release(self, ReplicaSlot slot, long index)
