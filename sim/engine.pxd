# Cython declarations for engine.py (compiled build only; see driftsched/ground/compiled.py):
# the engine's state as C-typed fields and its per-step calls as C calls. The .py stays the
# one implementation.

cimport cython

from driftsched.sim.enginestate cimport EngineRequest, StepOutcome, StepPlan


cdef class EngineBase:
    cdef public object settings
    cdef public long block_size
    cdef public bint caching
    cdef public object pool
    cdef public object waiting
    cdef public dict running
    cdef public long tick

    cpdef EngineRequest add(self, long index, long prompt_tokens, long target_tokens, object prefix=*)
    cpdef bint has_work(self) except -1
    cpdef StepPlan schedule(self)
    cpdef long run_length(self, StepPlan plan, long limit) except? -1
    cpdef StepOutcome complete(self, StepPlan plan, long steps=*)
    cpdef _release(self, EngineRequest req)
    cpdef _preempt(self, EngineRequest req)
    @cython.locals(need=long)
    cpdef bint _allocate(self, EngineRequest req, long new_tokens) except -1
    @cython.locals(i=long, req=EngineRequest, new=long, victim=EngineRequest)
    cpdef long _schedule_running(self, list order, long budget, StepPlan plan, list decodes) except? -1
    @cython.locals(max_seqs=long, chunked=bint, full=bint, max_len=long, req=EngineRequest, new=long)
    cpdef _schedule_waiting(self, long budget, StepPlan plan)
    cpdef _run(self, EngineRequest req, long new, StepPlan plan)
    cpdef _admitted(self, EngineRequest req)
    cpdef _finish(self, EngineRequest req, StepOutcome outcome)
    cpdef bint _advance(self, EngineRequest req, long new, StepOutcome outcome) except -1


cdef class ReferenceEngine(EngineBase):
    @cython.locals(plan=StepPlan, budget=long)
    cpdef StepPlan schedule(self)
    cpdef long run_length(self, StepPlan plan, long limit) except? -1
    @cython.locals(outcome=StepOutcome, req=EngineRequest, new=long)
    cpdef StepOutcome complete(self, StepPlan plan, long steps=*)
