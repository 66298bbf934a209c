# Cython declarations for prefixcache.py (compiled build only; see driftsched/ground/compiled.py):
# the free queue and the block pool's bookkeeping as C-typed fields and calls. The .py stays
# the one implementation.

cimport cython

from driftsched.sim.enginestate cimport EngineRequest


cdef class FreeQueue:
    cdef list _entries
    cdef long _head
    cdef readonly long _base
    cdef long long[:] _at
    cdef public long size

    @cython.locals(entries=list)
    cpdef append(self, long label)
    cpdef remove(self, long label)
    @cython.locals(entries=list, at=cython.longlong[:], head=long, base=long, label=long, _=long)
    cpdef pop_into(self, list out, long n)
    @cython.locals(at=cython.longlong[:], i=long, label=long, base=long, start=long, live=list)
    cpdef _rebuild(self)


cdef class PrefixCache:
    cdef public long capacity
    cdef public long block_size
    cdef public FreeQueue _queue
    cdef public list _key
    cdef public long long[:] _ref
    cdef public dict _first
    cdef public dict _more
    cdef public list _stash
    cdef public long query_tokens
    cdef public long hit_tokens

    cpdef bint take(self, long n) except -1
    @cython.locals(start=long, i=long, label=long, key_of=list, ref=cython.longlong[:])
    cpdef _pop_into(self, list out, long n)
    @cython.locals(first=dict, more=dict, later=dict)
    cpdef _uncache(self, object key, long label)
    cpdef object key(self, EngineRequest req, long j)
    @cython.locals(keys=list, i=long, size=long, index=long, c=long, shared_end=long, end=long,
                   ids=tuple)
    cpdef list keys(self, EngineRequest req, long n)
    @cython.locals(out=list, first=dict, j=long, label=long)
    cpdef list lookup(self, EngineRequest req)
    @cython.locals(ref=cython.longlong[:], queue=FreeQueue, b=long)
    cpdef touch(self, EngineRequest req, list labels)
    @cython.locals(own=list)
    cpdef grow(self, EngineRequest req, long blocks)
    @cython.locals(own=list, stash=list)
    cpdef sync(self, EngineRequest req, long blocks)
    @cython.locals(full=long, first=long, j=long, label=long, key_of=list, oldest=dict,
                   keys=list, blocks=list)
    cpdef register(self, EngineRequest req, long tokens)
    @cython.locals(ref=cython.longlong[:], queue=FreeQueue, blocks=list, b=long)
    cpdef release(self, EngineRequest req)
