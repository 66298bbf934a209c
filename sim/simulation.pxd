# Cython declarations for simulation.py (compiled build only; see
# driftsched/ground/compiled.py): the run's parts as C-typed fields, and its per-step calls as
# C calls. The .py stays the one implementation.

cimport cython

from driftsched.sim.arrivalcursor cimport ArrivalCursor
from driftsched.sim.dispatcher cimport Dispatcher, ReplicaSlot
from driftsched.sim.engine cimport EngineBase
from driftsched.sim.enginestate cimport EngineRequest, StepOutcome, StepPlan
from driftsched.sim.records cimport RecordBook
from driftsched.sim.replica cimport Replica


cdef class Run:
    cdef public object config
    cdef public object profile
    cdef public object settings
    cdef public object frame
    cdef public object output_tokens
    cdef public object _target_tokens
    cdef public object prompt_tokens
    cdef public object arrival_s
    cdef public dict _slos
    cdef public object _prefixes
    cdef public bint _engine_prefixes
    cdef public tuple _parsed
    cdef public object gateway
    cdef public object env
    cdef public list replicas
    cdef public Dispatcher dispatcher
    cdef public list costs
    cdef public bint _outcomes
    cdef public RecordBook book
    cdef double[:] _done_s
    cdef double[:] _scheduled_s
    cdef double[:] _first_token_s
    cdef public dict admissions
    cdef public object series
    cdef public object corrector_series
    cdef public bint _fast_forward
    cdef public ArrivalCursor cursor
    cdef public bint _lazy
    cdef public object _admitted
    cdef public object _idle
    cdef public object _arrival_wake
    cdef public double _next_sample_s
    cdef public double _sample_dt_s
    cdef public long _finished
    cdef public object _progress
    cdef public long _progress_every
    cdef public double _progress_at

    @cython.locals(replica=Replica, i=long)
    cpdef _send(self, view, ReplicaSlot slot, long batch, double now_s)
    @cython.locals(engine=EngineBase, plan=StepPlan, decoding=long, seconds=double, steps=long,
                   req=EngineRequest, scheduled_s=double[:])
    cpdef double _plan(self, Replica replica, double now_s) except? -1.0
    cpdef _complete(self, Replica replica)
    @cython.locals(outcome=StepOutcome, req=EngineRequest, finished=list, first_token_s=double[:])
    cpdef _settle(self, Replica replica, double boundary_s)
    @cython.locals(steps=long, wait=double)
    cpdef long _run_length(self, EngineBase engine, StepPlan plan, double first_s, cost) except? -1
    @cython.locals(i=long, dispatcher=Dispatcher, done_s=double[:])
    cpdef on_finish(self, EngineRequest req, double now, Replica replica)
    cpdef sample(self)
