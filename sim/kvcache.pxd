# Cython declarations for kvcache.py (compiled build only; see driftsched/ground/compiled.py):
# C-typed fields and calls for the block counter. The .py stays the one implementation.

cpdef long blocks_for(long tokens, long block_size) except? -1


cdef class BlockPool:
    cdef public long capacity
    cdef public long free

    cpdef bint take(self, long n) except -1
    cpdef give(self, long n)
