# Cython declarations for fastengine.py (compiled build only; see driftsched/ground/compiled.py):
# the fast engine's bookkeeping as C-typed fields and calls. The .py stays the one
# implementation.

cimport cython

from driftsched.sim.engine cimport EngineBase
from driftsched.sim.enginestate cimport EngineRequest, StepOutcome, StepPlan


cdef class FastRequest(EngineRequest):
    cdef public long t0
    cdef public long c0
    cdef public long o0
    cdef public long gen
    cdef public long run_seq


cdef class FastEngine(EngineBase):
    cdef public long _run_seq
    cdef public list _finish_heap
    cdef public long _decoding
    cdef public long _base
    cdef public list _by_residue
    cdef public list _counts
    cdef public dict _prefilling

    @cython.locals(steps=long)
    cpdef _materialise(self, FastRequest req)
    @cython.locals(r=long)
    cpdef _start_decoding(self, FastRequest req, long tick)
    @cython.locals(r=long)
    cpdef _stop_decoding(self, FastRequest req)
    @cython.locals(size=long, total=long, rest=long, top=long, r=long, counts=list)
    cpdef long _needs(self, long tick, long steps) except? -1
    @cython.locals(req=FastRequest, gen=long, due=long)
    cpdef list _due(self, list heap, long tick)
    @cython.locals(tick=long, decoding=long, needs=long, budget=long, before=long, plan=StepPlan)
    cpdef StepPlan schedule(self)
    @cython.locals(steps=long, free=long, size=long, d=long, extra=long, taken=long, tick=long)
    cpdef long run_length(self, StepPlan plan, long limit) except? -1
    @cython.locals(tick=long, req=FastRequest, new=long, outcome=StepOutcome)
    cpdef StepOutcome complete(self, StepPlan plan, long steps=*)
